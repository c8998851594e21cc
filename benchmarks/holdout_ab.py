"""A/B of sampler and trainer settings on a held-out-edge split, at a fixed
number of steps.

    python3 benchmarks/holdout_ab.py --holdout DIR [--steps 1500]
                                     [--set sampler.positives=walks ...] [--quick]
                                     [--save-vectors V.npy] [--save-ranks A.npz]
                                     [--against A.npz]

DIR is a `sagewalk holdout` directory (its training store is trained on).  One
process samples each batch with the producers' BatchBuilder and trains it with
the trainer's Trainer for exactly --steps steps (the cosine decay spans them),
embeds every item and ranks each held-out positive among all items by the same
code as `sagewalk evaluate --holdout`, beside the baselines (computed once per
DIR and cached in DIR/baseline-ranks.npz).  No daemons, so settings compare at the
same steps whatever the load.  Also reported, as a diagnostic only: the same
embeddings with log(1 + train degree) added to every candidate's score, which
measures how much of the gap to the baselines is popularity the unit-sphere
embeddings cannot express (only for vectors without a prior of their own,
`trainer.candidate_prior` off: theirs already carries it), and
`mean_cosine`, the mean pairwise cosine of 1,000 sampled item embeddings
(1.0: every item embedded alike, a collapse).

Two settings compare sharpest paired over the same held-out pairs: run A with
--save-ranks A.npz (its model's rank of every pair, per protocol), then B with
--against A.npz, and B's report gains `minus_against`: B's model minus A's in
each protocol, with the standard error of the per-pair difference
(serving.evaluate.paired_difference), beside `model_minus`, the model minus
each baseline the same way.  Several seeds of each pair up as their mean:

    python3 benchmarks/holdout_ab.py --mean-of A0.npz,A1.npz,A2.npz --minus B0.npz,B1.npz,B2.npz

trains nothing and prints, per protocol, A minus B with each pair's
difference averaged over the runs (run i of A against run i of B), and the
SE of that mean over the pairs.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The base settings: the demo's (docs/serving.md), id embeddings for every item.
BASE = """
[graphstore]
path = "{store}"
[sampler]
num_walks = 10
walk_length = 2
restart_prob = 0.5
num_neighbors = 10
batch_size = 256
easy_negatives = 500
pairs_per_item = 10
hard_negative_walks = 50
hard_negative_walk_length = 10
validation_fraction = 0.01
[trainer]
loss = "softmax"
hidden_dim = 64
embedding_dim = 64
id_embedding_buckets = {items}
lr = 0.01
warmup_steps = 100
hard_negative_schedule = [0]
run_dir = "{run}"
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holdout", help="`sagewalk holdout` directory")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--quick", action="store_true", help="200 steps")
    parser.add_argument("--save-vectors", metavar="NPY",
                        help="Also write the exported item vectors (float32, one row an "
                             "item, [z | beta] with the prior) for scoring them again")
    parser.add_argument("--save-ranks", metavar="NPZ",
                        help="Also write the model's rank of every held-out pair, per "
                             "protocol, for a later run's --against")
    parser.add_argument("--against", metavar="NPZ",
                        help="Another run's --save-ranks: report this model minus that one, "
                             "paired over the same pairs")
    parser.add_argument("--mean-of", metavar="A0.npz,A1.npz,...",
                        help="Saved ranks (--save-ranks) of several runs of one setting: "
                             "with --minus, pair their mean against another's; trains nothing")
    parser.add_argument("--minus", metavar="B0.npz,B1.npz,...",
                        help="The other setting's runs, in the same order (seed by seed)")
    args = parser.parse_args()
    if args.mean_of or args.minus:
        if not (args.mean_of and args.minus):
            parser.error("--mean-of and --minus go together")
        print(json.dumps(mean_minus(args.mean_of.split(","), args.minus.split(","))), flush=True)
        return
    if not args.holdout:
        parser.error("--holdout is required to train")
    if args.quick:
        args.steps = 200
    print(json.dumps(run(args)), flush=True)


def mean_minus(a_files: list[str], b_files: list[str]) -> dict:
    """Per protocol, runs A minus runs B (saved ranks, run i against run i),
    each pair's difference averaged over the runs (serving.evaluate)."""
    import numpy as np
    from serving.evaluate import paired_difference
    if len(a_files) != len(b_files):
        raise SystemExit(f"--mean-of has {len(a_files)} runs and --minus {len(b_files)}; "
                         "pair them run by run (seed by seed)")
    a = [_load_against(f, None) for f in a_files]
    b = [_load_against(f, None) for f in b_files]
    out = {"mean_of": a_files, "minus": b_files}
    for mode in ("all_items", "beyond_neighbours"):
        shapes = {r[mode].shape for r in a + b}
        if len(shapes) != 1:
            raise SystemExit(f"{mode}: the runs rank different numbers of pairs {sorted(shapes)}; "
                             "every file must come from the same holdout")
        out[mode] = paired_difference(np.stack([r[mode] for r in a]),
                                      np.stack([r[mode] for r in b])).as_dict()
    return out


def run(args) -> dict:
    import tempfile
    from pathlib import Path

    import numpy as np
    import torch

    from offline_ab import train_and_embed
    from sagewalk import config as configuration
    from serving import holdout as ho

    torch.set_num_threads(args.threads)
    held = ho.load_holdout(args.holdout)
    n = held.store.node_types[held.item_type]
    other = _load_against(args.against, len(held.queries)) if args.against else None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ab.toml"
        path.write_text(BASE.format(store=held.store.path, items=n, run=tmp))
        cfg = configuration.load(str(path), [f"sampler.item_type={held.item_type}", *args.set])
        vec, _, losses, train_s = train_and_embed(cfg, held.store, args.steps)
    if args.save_vectors:
        np.save(args.save_vectors, np.asarray(vec, np.float32))
    from gpu_consumer.prior import queries_for, unit_part
    learned = cfg.trainer.candidate_prior          # vec is [z ‖ β]: queries as [z ‖ 1]
    prior = (np.log1p(_item_degrees(held)) * cfg.trainer.temperature).astype(np.float32)
    scorers = {"model": lambda b: queries_for(vec[b], learned) @ vec.T}
    if not learned:     # vectors with a prior of their own would count popularity twice
        scorers["model+log-degree"] = lambda b: vec[b] @ vec.T + prior[None, :]
    report = {"holdout": str(args.holdout), "set": args.set, "steps": args.steps,
              "train_seconds": round(train_s, 1),
              "final_loss": round(float(np.mean(losses[-200:])), 4),
              "mean_cosine": round(mean_cosine(unit_part(vec) if learned else vec), 4)}
    saved = {}
    for mode, exclude in (("all_items", False), ("beyond_neighbours", True)):
        ranks = ho.rank_pairs(held, scorers, exclude_neighbours=exclude)
        base = baseline_ranks(held, exclude)
        report[mode] = {name: r.as_dict() for name, r in ho.metrics(held, ranks).items()}
        report[mode].update({name: r.as_dict() for name, r in ho.metrics(held, base).items()})
        minus, against = paired_rows(ranks["model"], base,
                                     None if other is None else other[mode])
        report.setdefault("model_minus", {})[mode] = minus
        if against is not None:
            report.setdefault("minus_against", {"against": args.against})[mode] = against
        saved[mode] = ranks["model"]
    if args.save_ranks:
        np.savez(args.save_ranks, **saved)
    return report


def paired_rows(model, baselines: dict, against=None) -> tuple[dict, dict | None]:
    """The model's ranks minus each baseline's, and minus another run's
    (`against`, or None), each paired over the same held-out pairs."""
    from serving import holdout as ho
    from serving.evaluate import paired_difference
    minus = {name: d.as_dict() for name, d in ho.paired({**baselines, "model": model},
                                                        of="model").items()}
    if against is None:
        return minus, None
    return minus, paired_difference(model, against).as_dict()


def _load_against(path, pairs: int | None) -> dict:
    """Another run's saved ranks, checked to be of this holdout's pairs (any
    number of them with pairs None)."""
    import numpy as np
    with np.load(path) as saved:
        ranks = {k: np.asarray(saved[k]) for k in saved.files}
    for mode in ("all_items", "beyond_neighbours"):
        if mode not in ranks or ranks[mode].ndim != 1 or (
                pairs is not None and ranks[mode].shape != (pairs,)):
            got = ranks[mode].shape if mode in ranks else "nothing"
            which = "" if pairs is None else f" of this holdout's {pairs} pairs"
            raise SystemExit(f"{path}: expected {mode!r} ranks{which} (a --save-ranks file "
                             f"of a run on the same holdout), found {got}")
    return ranks


def mean_cosine(vectors, sample: int = 1000, seed: int = 0) -> float:
    """Mean pairwise cosine of a sample of item embeddings (self-pairs
    included): near 0 for spread-out vectors, 1.0 when every item has the same
    embedding (collapse, docs/quality.md)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(vectors), min(sample, len(vectors)), replace=False)
    v = np.asarray(vectors[rows], np.float64)
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return float((v @ v.T).mean())


def _item_degrees(held):
    """Training degree of every item over the holdout's context types (what
    the popularity baseline ranks by)."""
    from serving.baselines import Bipartite
    graph = Bipartite.from_store_types(held.store, held.item_type, list(held.context_types))
    return graph.item_degrees()


def baselines_for(held, exclude: bool) -> dict:
    """Baseline figures on the same pairs (from `baseline_ranks`)."""
    from serving import holdout as ho
    return {name: r.as_dict() for name, r in
            ho.metrics(held, baseline_ranks(held, exclude)).items()}


def baseline_ranks(held, exclude: bool) -> dict:
    """Each baseline's rank of every held-out positive, computed once per
    holdout and mode and cached in the holdout's baseline-ranks.npz
    (benchmarks/quality.py reads the same cache and pairs the methods' ranks
    with them)."""
    from pathlib import Path

    import numpy as np

    from serving import holdout as ho
    cache = Path(held.path) / "baseline-ranks.npz"
    key = "beyond_neighbours" if exclude else "all_items"
    known = dict(np.load(cache)) if cache.exists() else {}
    if not any(k.startswith(key + "/") for k in known):
        scorers = ho.baseline_scorers(held.store, held.item_type, held.context_types)
        for name, r in ho.rank_pairs(held, scorers, exclude_neighbours=exclude).items():
            known[f"{key}/{name}"] = r
        tmp = cache.with_name(cache.name + ".tmp.npz")
        np.savez(tmp, **known)
        tmp.replace(cache)
    return {k.split("/", 1)[1]: v for k, v in known.items() if k.startswith(key + "/")}


if __name__ == "__main__":
    main()
