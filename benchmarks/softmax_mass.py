"""Where a trained model's softmax puts its mass, and how much of it the hard
negatives can reach.

The sampled softmax the trainer optimises stands in for the full one over
every item, p(c | q) = exp(cos(z_q, z_c) / τ) / Σ_c' exp(cos(z_q, z_c') / τ).
Its negatives estimate that denominator; hard negatives can only improve the
estimate where a few items near the query hold much of it.  For a sample of
held-out queries and an exported model (`sagewalk embed --export`; the unit
part of each vector, the cosines the loss trains on, the prior being added
where served), this reports, averaged over the queries:

- the mass on the model's own top 10, 50, 200 and 1,000 items, and the
  effective number of items the softmax spreads over, 1 / Σ p²;
- `uniform_estimate_rel_sd`: the relative standard deviation of the
  denominator estimated from m uniform negatives, sqrt((n Σ p² - 1) / m);
- the hard-negative window the run's producers draw from (its own
  sampler settings and walk kernel, sampler/negatives.py): its width, its
  mass, and `hard_coverage`: the mass h hard negatives sample a row, h x
  mass / width, against the m / n the uniform negatives sample;
- the same for PinSage's hinge, whose gradient comes only from negatives
  within the margin Δ of the positive (the held-out answer standing in for
  it): how many items violate, how many of the m uniform and of the h hard
  draws a row violate.

    python benchmarks/softmax_mass.py --holdout DIR --export EXPORT --run RUN_DIR
                                      [--temperature T] [--queries 1000] [--hard 2]
    python benchmarks/softmax_mass.py --holdout DIR --vectors V.npy [--set KEY=VALUE ...]

τ, m and the window come from --run's train.toml (a `sagewalk train`
run_dir), or for a `benchmarks/holdout_ab.py --save-vectors` file from
holdout_ab's base settings and the same --set the A/B ran with;
--temperature overrides τ.  It holds a few float64 [queries, items]
matrices: 1,000 queries over the 50k-item graph take about 2 GB.  Prints one
JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOP = (10, 50, 200, 1000)


def softmax_rows(z: np.ndarray, queries: np.ndarray, tau: float) -> np.ndarray:
    """float64 [Q, n]: each query's softmax over every other item of
    cos(z_q, z_c) / τ (the query's own column 0).  z: unit vectors [n, d]."""
    logits = (z[queries].astype(np.float64) @ z.T.astype(np.float64)) / tau
    logits[np.arange(len(queries)), queries] = -np.inf
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def mass_figures(p: np.ndarray, easy: int, top=TOP) -> dict:
    """The concentration of softmax rows p [Q, n] (each over n - 1 items)."""
    n = p.shape[1] - 1
    ordered = -np.sort(-p, axis=1)
    cumulative = np.cumsum(ordered, axis=1)
    squares = (p ** 2).sum(axis=1)
    out = {f"top{k}": float(cumulative[:, min(k, n) - 1].mean()) for k in top}
    out["n_eff"] = float(np.mean(1.0 / squares))
    out["uniform_estimate_rel_sd"] = float(np.mean(np.sqrt(np.maximum(n * squares - 1, 0)
                                                            / max(1, easy))))
    return out


def window_figures(p: np.ndarray, windows, easy: int, hard: int) -> dict:
    """What the hard-negative windows (sampler.negatives.Windows, one row per
    query) hold of softmax rows p [Q, n], and what `hard` draws from them
    sample of it against `easy` uniform negatives."""
    n = p.shape[1] - 1
    inside = windows.inside()
    widths = inside.sum(axis=1).astype(np.float64)
    mass = np.where(inside, _gather(p, windows.items), 0.0).sum(axis=1)
    has = widths > 0
    per_item = np.where(has, mass / np.maximum(widths, 1), 0.0)
    return {"queries_with_window": int(has.sum()),
            "width_median": float(np.median(widths)),
            "mass": float(mass.mean()),
            "mass_per_item_over_mean": float(np.mean(per_item[has] * n)) if has.any() else 0.0,
            "hard_coverage": float(np.mean(hard * per_item)),
            "uniform_coverage": easy / n}


def _gather(rows: np.ndarray, items: np.ndarray) -> np.ndarray:
    """rows[i, items[i, j]] for every (i, j); padding ids (< 0) read column 0
    and are left for the caller's window mask to drop."""
    return np.take_along_axis(rows, np.clip(items, 0, rows.shape[1] - 1), axis=1)


def settings(args):
    """The run's resolved config (--run's train.toml), or holdout_ab's base
    settings with --set, as the A/B that saved --vectors trained with."""
    import tempfile
    from benchmarks.holdout_ab import BASE
    from benchmarks.prior_strength import run_config
    from sagewalk import config as configuration
    if args.run:
        return run_config(args.run)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ab.toml"
        path.write_text(BASE.format(store=args.holdout, items=0, run=tmp))
        return configuration.load(str(path), args.set)


def unit_vectors(args, held, cfg) -> np.ndarray:
    from gpu_consumer.prior import unit_part
    from serving.methods import load_export
    if args.export:
        scorer = load_export(Path(args.export), held.item_ids)
        v, prior = scorer.vectors, scorer.prior
    else:
        v, prior = np.load(args.vectors), cfg.trainer.candidate_prior
        if v.shape[0] != len(held.item_ids):
            raise SystemExit(f"--vectors {args.vectors}: {v.shape[0]} rows, but the holdout has "
                             f"{len(held.item_ids)} items; pass the holdout_ab --save-vectors "
                             "file of a run on this holdout")
    z = np.asarray(unit_part(v) if prior else v, np.float32)
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def hinge_figures(z: np.ndarray, queries: np.ndarray, positives: np.ndarray, margin: float,
                  windows, easy: int, hard: int) -> dict:
    """Which items violate the hinge, cos(q, c) > cos(q, p) - margin (never
    q or p), and how many of `easy` uniform draws and of `hard` draws from
    each row's window (sampler.negatives.Windows) violate, per row."""
    n = z.shape[0] - 2
    scores = z[queries].astype(np.float64) @ z.T.astype(np.float64)
    rows = np.arange(len(queries))
    bar = scores[rows, positives] - margin
    scores[rows, queries] = scores[rows, positives] = -np.inf
    violates = scores > bar[:, None]
    count = violates.sum(axis=1)
    in_window = windows.inside()
    widths = in_window.sum(axis=1).astype(np.float64)
    inside = (in_window & _gather(violates, windows.items)).sum(axis=1)
    rate = np.where(widths > 0, inside / np.maximum(widths, 1), 0.0)
    return {"margin": margin, "violators": float(count.mean()),
            "uniform_violating_draws": float(easy * count.mean() / n),
            "hard_violating_draws": float(hard * rate.mean()),
            "window_violating_share": float(inside.sum() / max(1, count.sum()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holdout", required=True, help="`sagewalk holdout` directory")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--export", help="`sagewalk embed --export` directory (with --run)")
    source.add_argument("--vectors", help="`benchmarks/holdout_ab.py --save-vectors` file "
                        "(with the A/B's --set)")
    parser.add_argument("--run", default=None, help="the `sagewalk train` run_dir")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="without --run: the A/B's settings over holdout_ab's base")
    parser.add_argument("--temperature", type=float, default=None,
                        help="τ (default: the run's trainer.temperature)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--hard", type=int, default=2,
                        help="hard negatives a row (the curriculum's last epochs: 2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.export and not args.run:
        parser.error("--export needs --run (the run_dir whose train.toml gives τ and the window)")
    from sampler.graph import WalkGraph
    from sampler.negatives import hard_negative_windows
    from serving import holdout as ho
    held = ho.load_holdout(args.holdout)
    cfg = settings(args)
    tau = args.temperature if args.temperature is not None else float(cfg.trainer.temperature)
    z = unit_vectors(args, held, cfg)
    pick = np.random.default_rng(args.seed).choice(
        len(held.queries), min(args.queries, len(held.queries)), replace=False)
    queries, positives = held.queries[pick], held.positives[pick]
    p = softmax_rows(z, queries, tau)
    s = cfg.sampler
    windows = hard_negative_windows(
        WalkGraph.from_store(held.store, held.item_type), queries, positives,
        rank=tuple(s.hard_negative_rank), full_catalogue=s.hard_negative_full_catalogue,
        num_walks=s.hard_negative_walks, walk_length=s.hard_negative_walk_length,
        restart_prob=s.hard_negative_restart_prob, seed=args.seed + 1)
    report = {"holdout": args.holdout, "vectors": args.export or args.vectors,
              "temperature": tau, "items": int(z.shape[0]), "queries": int(len(queries)),
              "easy_negatives": int(s.easy_negatives), "hard_negatives": args.hard,
              **mass_figures(p, s.easy_negatives),
              "window": window_figures(p, windows, s.easy_negatives, args.hard),
              "hinge": hinge_figures(z, queries, positives, float(cfg.trainer.margin),
                                     windows, s.easy_negatives, args.hard)}
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
