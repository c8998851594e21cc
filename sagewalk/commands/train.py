"""`sagewalk train --config F --minutes M`: train any store within a wall-clock budget.

Settings the config leaves unset are picked from the store and the budget
(`sagewalk/autoplan.py`, one rule per row) and printed; the budget becomes
trainer.time_budget_s, so the learning-rate decay ends within it at whatever
step rate the machine manages.  Then the real daemons run as `sagewalk up`
does; run_dir gets model.pt, run_summary.json (with the choices) and
train.toml, the resolved config (run it again to resume).
"""

from __future__ import annotations

import argparse
import json

from sagewalk.commands._common import add_config_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="Train within --minutes: plan sized to the budget, unset settings "
        "picked from the store; writes run_dir/model.pt and run_summary.json.")
    add_config_args(parser)
    parser.add_argument("--minutes", type=float, required=True,
                        help="Wall-clock training budget (trainer.time_budget_s = 60 x M).")
    parser.add_argument("--run-dir", default=None, metavar="DIR",
                        help="Shorthand for --set trainer.run_dir=DIR.")
    parser.add_argument("--dry-run", action="store_true",
                        help="Print the choices and the resolved config; train nothing.")
    parser.set_defaults(run=_run)


def resolve(args: argparse.Namespace):
    """(config, choices): the file and --set items, the budget, then the rules."""
    import tomllib
    from pathlib import Path

    from graphstore import open_store
    from sagewalk import autoplan
    from sagewalk.commands._common import load_config
    from sagewalk.config import override
    from sagewalk.errors import ConfigError

    if not args.minutes > 0:
        raise ConfigError(f"--minutes: must be > 0, got {args.minutes}")
    overrides = list(args.overrides)
    if args.run_dir is not None:
        overrides.append(f"trainer.run_dir={json.dumps(args.run_dir)}")
    args.overrides = overrides
    config = load_config(args)   # validates the file and the overrides first
    raw = tomllib.loads(Path(args.config).read_text()) if args.config else {}
    budget = args.minutes * 60.0
    config = override(config, f"trainer.time_budget_s={budget}")
    explicit = autoplan.explicit_keys(raw, overrides) | {"trainer.time_budget_s"}
    stats = autoplan.StoreStats.of(open_store(config.graphstore.path), config.sampler.item_type)
    config, choices = autoplan.fill_unset(config, explicit, stats, budget)
    return config, choices, stats


def _run(args: argparse.Namespace) -> int:
    from dataclasses import asdict
    from pathlib import Path

    from sagewalk.commands import up
    from sagewalk.config import to_toml

    config, choices, stats = resolve(args)
    print(f"store {config.graphstore.path}: {stats.items:,} {config.sampler.item_type} items, "
          f"{stats.edges:,} edges, {stats.item_degree:.1f} contexts per item, "
          f"{stats.context_degree:.1f} items per context, features "
          f"{stats.feature_dim or 'none'}", flush=True)
    print(f"budget {args.minutes:g} min: trainer.time_budget_s = {config.trainer.time_budget_s:g}")
    for c in choices:
        print(f"picked from the store: {c['setting']} = {c['value']!r} (because {c['because']})")
    run_dir = Path(config.trainer.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "train.toml"
    path.write_text(to_toml(config))
    print(f"resolved config: {path}", flush=True)
    if args.dry_run:
        return 0
    # up's own parser gives its arguments' defaults, whatever options it grows
    parser = argparse.ArgumentParser()
    up.register(parser.add_subparsers())
    up_args = parser.parse_args(["up", "--config", str(path)])
    up_args.verbose = args.verbose
    code = up_args.run(up_args)
    summary_path = run_dir / "run_summary.json"
    if not summary_path.exists():
        return code or 1
    summary = json.loads(summary_path.read_text())
    summary["autoplan"] = {"choices": choices, "store": asdict(stats),
                           "minutes": args.minutes}
    summary_path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    print(f"trained {summary['steps']} steps in {summary.get('trained_seconds')} s "
          f"({summary['stop_reason']}), {summary.get('epochs_complete')} epochs complete, "
          f"final lr {summary.get('lr_final')} (planned {summary.get('lr_planned_final')}); "
          f"model {summary.get('model_path')}", flush=True)
    calibration = summary.get("prior_calibration")
    if calibration:
        mrr, factors = calibration["mrr_by_factor"], calibration["factors"]
        print(f"degree prior: {calibration['factor']:g} x tau x log(1 + degree), picked on "
              f"{calibration['pairs']} held-out pairs (scaled MRR {max(mrr):.4f}; at 1 x "
              f"{mrr[factors.index(1.0)]:.4f}, cosines alone {mrr[0]:.4f})", flush=True)
    return code
