"""`sagewalk demo`: MovieLens-1M end to end (fetch, ingest, train, embed, index,
evaluate against baselines, related movies) within a time budget."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="The whole job on MovieLens-1M: fetch, ingest, train for --minutes, "
        "embed, index, evaluate vs baselines; leaves results.json in --out.")
    parser.add_argument("--minutes", type=float, default=10.0,
                        help="Training budget in minutes (default 10).")
    parser.add_argument("--out", metavar="DIR", default="sagewalk-demo",
                        help="Results directory (store, run, index, logs, results.json).")
    parser.add_argument("--cache", metavar="DIR", default=None,
                        help="Dataset cache (default $SAGEWALK_CACHE or ~/.cache/sagewalk).")
    parser.add_argument("--producers", type=int, default=1,
                        help="Sampler producer processes (default 1 on a 2-core machine).")
    parser.add_argument("--processes", type=int, default=2,
                        help="Processes for the layer-wise embedding (default 2).")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE",
                        help="Override a setting of the generated config (repeatable).")
    parser.add_argument("--no-dashboard", action="store_true",
                        help="Do not start `sagewalk dashboard` while training.")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sagewalk.demo import DemoError, DemoPlan, run_demo
    from serving.movielens import default_cache
    if args.minutes <= 0 or args.producers < 1 or args.processes < 1:
        raise DemoError(f"--minutes must be > 0 and --producers/--processes >= 1, got "
                        f"{args.minutes}, {args.producers}, {args.processes}")
    plan = DemoPlan(out=Path(args.out).resolve(),
                    cache=Path(args.cache) if args.cache else default_cache(),
                    minutes=args.minutes, producers=args.producers, processes=args.processes,
                    overrides=tuple(args.overrides), dashboard=not args.no_dashboard)
    run_demo(plan)
    return 0
