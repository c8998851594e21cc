"""What importance pooling can add over a mean, before any training.

PinSage pools a node's neighbours weighted by their visit counts
(importance pooling); the ablation pools the same neighbours with equal
weights.  On a planted graph whose item features are their community's (or
leaf's) centre plus noise, the pooled neighbour features are the first
layer's evidence about where the query belongs, and that can be read
without a model: for held-out queries, pool the stored features of the
neighbourhood the sampler draws (`pinsage_neighbourhoods`, the training
kernel) both ways, and report

- `purity`: the pooled weight on neighbours of the query's own leaf (or
  community on a one-scale graph), and on its community;
- `centre_accuracy`: how often the pooled features lie nearest the query's
  own centre among all the planted centres (leaves on a nested graph), for
  the pooled neighbours alone and for the mean of the query's own features
  and the pooled ones (what a layer that concatenates the two can reach
  linearly);
- `count_ratio`: the top kept neighbour's visit count over the last one's
  (1: flat counts, so the weights cannot differ from a mean).

    python benchmarks/pooling_signal.py --holdouts /tmp/bench \\
        [--graphs synth-10k-feat,synth-10k-nested-feat] [--queries 3000] \\
        [--neighbourhoods 10x2:10,50x2:20,50x2:50]

A neighbourhood is WALKSxSTEPS:KEPT (restart 0.5 for walks of 2 steps or
more, as `sagewalk train` picks, none for one-step walks).  Prints one JSON
line {graph: {neighbourhood: figures}}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GRAPHS = ("synth-10k-feat", "synth-10k-nested-feat")


def neighbourhood_spec(text: str) -> tuple[int, int, int]:
    """'50x2:20' -> (walks 50, steps 2, kept 20)."""
    try:
        walks_steps, kept = text.split(":")
        walks, steps = walks_steps.split("x")
        spec = int(walks), int(steps), int(kept)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"neighbourhood {text!r}: expected WALKSxSTEPS:KEPT, e.g. 50x2:20") from None
    if min(spec) < 1:
        raise argparse.ArgumentTypeError(f"neighbourhood {text!r}: every number must be >= 1")
    return spec


def pooled_signal(features: np.ndarray, centres: np.ndarray, label: np.ndarray,
                  community: np.ndarray, queries: np.ndarray, neighbours: np.ndarray,
                  weights: np.ndarray) -> dict:
    """The figures above for one neighbourhood, pooled by its weights
    ('importance') and by equal weights over the same neighbours ('uniform').

    features [n, d] items' features; centres [c, d] the planted centres;
    label [n] each item's centre (leaf, or community on a one-scale graph);
    community [n]; queries [q]; neighbours [q, k] item ids, -1 padded;
    weights [q, k] normalised visit counts, 0 padded.  Queries with no
    neighbour are left out."""
    present = neighbours >= 0
    keep = present.any(axis=1)
    queries, neighbours, weights, present = (a[keep] for a in
                                             (queries, neighbours, weights, present))
    safe = np.where(present, neighbours, 0)
    nb = features[safe]                                     # [q, k, d]
    own = label[queries]
    same_label = (label[safe] == own[:, None]) & present
    same_community = (community[safe] == community[queries][:, None]) & present
    counts = np.where(present, weights, np.inf)
    last = counts.min(axis=1)
    out = {"queries": int(len(queries)),
           "count_ratio": round(float(np.mean(weights.max(axis=1) / last)), 2)}
    uniform = present / present.sum(axis=1, keepdims=True)
    for name, w in (("importance", weights / weights.sum(axis=1, keepdims=True)),
                    ("uniform", uniform)):
        pooled = np.einsum("qk,qkd->qd", w, nb)
        both = 0.5 * (features[queries] + pooled)
        out[name] = {
            "purity": round(float((w * same_label).sum(axis=1).mean()), 4),
            "community_purity": round(float((w * same_community).sum(axis=1).mean()), 4),
            "centre_accuracy": round(_nearest_is_own(pooled, centres, own), 4),
            "centre_accuracy_with_self": round(_nearest_is_own(both, centres, own), 4)}
    out["self_centre_accuracy"] = round(_nearest_is_own(features[queries], centres, own), 4)
    return out


def _nearest_is_own(x: np.ndarray, centres: np.ndarray, own: np.ndarray) -> float:
    d = (x * x).sum(1)[:, None] - 2 * x @ centres.T + (centres * centres).sum(1)[None, :]
    return float(np.mean(d.argmin(axis=1) == own))


def graph_figures(name: str, holdouts: Path, specs, queries: int, seed: int = 0) -> dict:
    from graphstore.synth import community_features
    from sampler.graph import WalkGraph
    from sampler.neighbourhoods import pinsage_neighbourhoods
    from serving import benchgraphs
    from serving.holdout import load_holdout
    s = benchgraphs.SYNTH[name]
    if not s.features:
        raise SystemExit(f"{name}: no item features to pool; pick a graph with features "
                         f"({', '.join(n for n, g in benchgraphs.SYNTH.items() if g.features)})")
    held = load_holdout(holdouts / name / "holdout")
    params = s.params()
    features = np.asarray(held.store.features(held.item_type), np.float32)
    n = features.shape[0]
    generated = np.array(held.store.ids(held.item_type).to_external(np.arange(n)), np.int64)
    L = params.num_leaves
    # noise 0: the centres; item j's is leaf j % L's, so items 0..L-1 are the L centres
    centres = community_features(params, features.shape[1], 0.0, 0, L)
    label, community = generated % L, generated % params.num_communities
    pick = np.random.default_rng(seed).choice(len(held.queries),
                                              min(queries, len(held.queries)), replace=False)
    q = held.queries[pick]
    graph = WalkGraph.from_store(held.store, held.item_type)
    out = {}
    for walks, steps, kept in specs:
        nb = pinsage_neighbourhoods(graph, q, num_walks=walks, walk_length=steps,
                                    restart_prob=0.5 if steps >= 2 else 0.0, top_k=kept,
                                    seed=seed + 1)
        out[f"{walks}x{steps}:{kept}"] = pooled_signal(
            features, centres, label, community, q, nb.neighbors, nb.weights.astype(np.float64))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holdouts", required=True, metavar="ROOT",
                        help="benchmark graphs' root (`sagewalk holdout --benchmark`)")
    parser.add_argument("--graphs", default=",".join(GRAPHS))
    parser.add_argument("--queries", type=int, default=3000)
    parser.add_argument("--neighbourhoods", default="10x2:10,50x2:20,50x2:50",
                        type=lambda t: [neighbourhood_spec(x) for x in t.split(",")])
    args = parser.parse_args()
    report = {}
    for name in args.graphs.split(","):
        report[name] = graph_figures(name, Path(args.holdouts), args.neighbourhoods,
                                     args.queries)
        print(f"{name}: {json.dumps(report[name])}", file=sys.stderr, flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
