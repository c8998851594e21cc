"""What PinSage's hard-negative window holds on the benchmark graphs.

For each graph's training store (`sagewalk holdout --benchmark NAME --root
ROOT`) and a sample of its held-out queries, rank items by the visit counts
of the hard-negative walks `sagewalk train` picks (sampler/negatives.py, the
same kernel), take the rank window the sampler draws hard negatives from, and
report:

- how many distinct items the walks reach and how wide the window is, and how
  many of a batch's 500 uniform easy negatives land in it anyway;
- on the synthetic graphs, the share of window items in the query's planted
  community (and leaf) against chance;
- where the query's held-out positive ranks by the same counts: above the
  window (the walks rank it higher than any hard negative), inside it (a
  hard negative can be the held-out answer itself), or below it / unreached.

    python benchmarks/hard_window.py --holdouts /tmp/bench [--graphs a,b] [--queries 1000]
                                     [--walks 50] [--length 10] [--restart 0.15]

Prints one JSON line {graph: figures}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GRAPHS = ("synth-10k", "synth-10k-nested", "synth-50k", "ml-100k", "ml-1m")


def window_figures(held, *, queries: int, walks: int, length: int, restart: float,
                   leaves: tuple[int, int] | None = None, seed: int = 0) -> dict:
    """The figures above for one opened holdout, with the sampler's default
    rank window and easy-negative count; leaves = (communities, leaves) of a
    synthetic graph whose external item ids are the generator's."""
    from sampler.config import SamplerConfig
    from sampler.graph import WalkGraph
    from sampler.negatives import rank_window, reached_window
    from sampler.neighbourhoods import ranked_visits
    defaults = SamplerConfig()
    easy = defaults.easy_negatives
    graph = WalkGraph.from_store(held.store, held.item_type)
    n = graph.num_items
    lo, hi = rank_window(n, tuple(defaults.hard_negative_rank),
                         defaults.hard_negative_full_catalogue)
    pick = np.random.default_rng(seed).choice(len(held.queries), min(queries, len(held.queries)),
                                              replace=False)
    q, p = held.queries[pick], held.positives[pick]
    ranked = ranked_visits(graph, q, num_walks=walks, walk_length=length, restart_prob=restart,
                           top_k=hi, seed=seed + 1)
    reached = (ranked.counts > 0).sum(axis=1)
    ext = None
    if leaves is not None:
        ext = np.array(held.store.ids(held.item_type).to_external(np.arange(n)), np.int64)
    sizes, same, place = [], {"community": [], "leaf": []}, {"above": 0, "inside": 0, "below": 0}
    for i in range(len(q)):
        v = int(reached[i])
        a, z = reached_window(lo, hi, v)
        sizes.append(z - a)
        hit = np.flatnonzero(ranked.items[i, :v] == p[i])
        where = int(hit[0]) if hit.size else v
        place["above" if where < a else "inside" if where < z else "below"] += 1
        if ext is not None and z > a:
            window = ext[ranked.items[i, a:z]]
            same["community"].append(np.mean(window % leaves[0] == ext[q[i]] % leaves[0]))
            same["leaf"].append(np.mean(window % leaves[1] == ext[q[i]] % leaves[1]))
    out = {"items": n, "queries": len(q), "window": [lo, hi],
           "reached_median": float(np.median(reached)),
           "window_size_median": float(np.median(sizes)),
           "easy_in_window_per_query": round(easy * float(np.mean(sizes)) / n, 1),
           "positive_rank": {k: round(v / len(q), 3) for k, v in place.items()}}
    if ext is not None:
        out["window_same_community"] = round(float(np.mean(same["community"])), 3)
        out["chance_community"] = round(1 / leaves[0], 3)
        if leaves[1] != leaves[0]:
            out["window_same_leaf"] = round(float(np.mean(same["leaf"])), 3)
            out["chance_leaf"] = round(1 / leaves[1], 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holdouts", required=True, metavar="ROOT")
    parser.add_argument("--graphs", default=",".join(GRAPHS))
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--walks", type=int, default=50, help="sampler.hard_negative_walks")
    parser.add_argument("--length", type=int, default=10,
                        help="sampler.hard_negative_walk_length")
    parser.add_argument("--restart", type=float, default=0.15,
                        help="sampler.hard_negative_restart_prob")
    args = parser.parse_args()
    from serving import benchgraphs
    from serving.holdout import load_holdout
    report = {"walks": args.walks, "length": args.length, "restart": args.restart}
    for name in args.graphs.split(","):
        held = load_holdout(Path(args.holdouts) / name / "holdout")
        s = benchgraphs.SYNTH.get(name)
        leaves = None if s is None else (s.communities, s.communities * s.subcommunities)
        report[name] = window_figures(held, queries=args.queries, walks=args.walks,
                                      length=args.length, restart=args.restart, leaves=leaves)
        print(f"{name}: {json.dumps(report[name])}", file=sys.stderr, flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
