"""`sagewalk evaluate`: HITS@K (DGL protocol), pair hit-rate / scaled MRR, or the
held-out-edge protocol on a `sagewalk holdout` directory."""

from __future__ import annotations

import argparse

from sagewalk.commands._common import add_config_args, load_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="Score embeddings and baselines: DGL's PinSAGE HITS@K on a "
        "leave-last-out dataset, hit-rate@K and scaled MRR on a pair file, or held-out "
        "edges of any store (--holdout).")
    add_config_args(parser)
    parser.add_argument("--dataset", metavar="DIR", default=None,
                        help="Converted dataset (`sagewalk datasets fetch`): train/valid/test.")
    parser.add_argument("--embeddings", metavar="EXPORT_DIR", default=None,
                        help="`sagewalk embed --export` directory (the model under test).")
    parser.add_argument("--holdout", metavar="DIR", default=None,
                        help="`sagewalk holdout` directory: HR@10, HR@50, scaled MRR and "
                        "median rank over all items, baselines from its training store.")
    parser.add_argument("--exclude-neighbours", action="store_true",
                        help="--holdout: leave the query's training neighbours (items "
                        "sharing a context) out of the candidates (default: all items).")
    parser.add_argument("--leaky", action="store_true",
                        help="--holdout: score the baselines on the SOURCE store, removed "
                        "edges put back (the leakage check; never a result).")
    parser.add_argument("--baselines", default=None,
                        help="Comma-separated baselines; empty for none.  --dataset: "
                        "popularity, itemknn, randomwalk, genre, features, nextitem "
                        "(default the first four); --holdout: itemknn, ppr, svd, "
                        "popularity (default all).")
    parser.add_argument("--store", metavar="DIR", default=None,
                        help="Store whose item features the 'features' baseline uses.")
    parser.add_argument("-k", type=int, default=10, help="Cut-off K.")
    parser.add_argument("--pairs", metavar="FILE", default=None,
                        help="Pair protocol: tab-separated query and positive external ids "
                        "(or 'valid' / 'test' for latest-train-item pairs of --dataset).")
    parser.add_argument("--scale", type=float, default=100.0,
                        help="MRR rank scale (PinSage 100, MultiSage 10).")
    parser.add_argument("--pool", type=int, default=None,
                        help="Candidate pool size (default: every item).")
    parser.add_argument("--out", metavar="FILE", default=None, help="Write results as JSON.")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from serving import methods as m
    from serving.evaluate import EvaluationError, load_held_out
    config = load_config(args)
    if args.holdout is not None:
        return _holdout(args)
    if args.baselines is None:
        args.baselines = "popularity,itemknn,randomwalk,genre"
    if args.dataset is None:
        raise EvaluationError("--dataset DIR or --holdout DIR is required (the directory "
                              "`sagewalk datasets fetch` or `sagewalk holdout` wrote)")
    if args.k < 1:
        raise EvaluationError(f"-k must be >= 1, got {args.k}")
    held = load_held_out(Path(args.dataset))
    scorers = _scorers(args, config, held, m)
    if args.pairs:
        results = _pairs(args, held, scorers)
        for name, r in results.items():
            print(f"{name:<24} hit-rate@{args.k} {r['hit_rate']:.4f}  "
                  f"MRR(scale {args.scale:g}) {r['mrr']:.4f}  ({r['pairs']} pairs, "
                  f"pool {r['pool']})")
    else:
        results = m.evaluate_methods(scorers, held, args.k)
        print(m.table(results, args.k))
    if args.out:
        Path(args.out).write_text(json.dumps({"methods": results}, indent=2) + "\n")
    return 0


def _scorers(args, config, held, m) -> dict:
    from pathlib import Path
    scorers = {}
    if args.embeddings:
        scorers["model"] = m.load_export(Path(args.embeddings), held.item_ids)
    feats = None
    names = [b for b in args.baselines.split(",") if b]
    if "features" in names:
        from graphstore import open_store
        store = open_store(args.store or config.graphstore.path)
        feats = m.catalogue_features(store, config.sampler.item_type, held.item_ids)
    for name in names:
        scorers[name] = m.baseline(name, held, Path(args.dataset), feats)
    return scorers


def _pairs(args, held, scorers) -> dict:
    from pathlib import Path

    from serving.evaluate import pair_metrics, pairs_from_split
    if args.pairs in ("valid", "test"):
        q, p = pairs_from_split(held, args.pairs)
    else:
        from serving.methods import read_pairs
        q, p = read_pairs(Path(args.pairs), held.item_ids)
    return {name: pair_metrics(s, q, p, k=args.k, scale=args.scale, pool=args.pool,
                               num_items=len(held.item_ids)).__dict__
            for name, s in scorers.items()}


def _holdout(args) -> int:
    import json
    from pathlib import Path

    from graphstore import open_store
    from serving import holdout as h
    ho = h.load_holdout(Path(args.holdout))
    names = [b for b in (args.baselines if args.baselines is not None
                         else ",".join(h.BASELINES)).split(",") if b]
    scorers = {}
    if args.embeddings:
        scorers["model"] = h.embedding_scorer(ho, args.embeddings)
    base = open_store(ho.meta["source_store"]) if args.leaky else ho.store
    if args.leaky and base.digest != ho.meta["source_digest"]:
        raise h.HoldoutError(f"--leaky: {base.path} is no longer the store this holdout was "
                             f"split from (digest {base.digest[:16]}, holdout.json says "
                             f"{ho.meta['source_digest'][:16]}); split it again")
    scorers.update(h.baseline_scorers(base, ho.item_type, ho.context_types, names))
    ranks = h.rank_pairs(ho, scorers, exclude_neighbours=args.exclude_neighbours)
    results = h.metrics(ho, ranks, scale=args.scale)
    # The model against each baseline over the same pairs: the SE of a difference.
    versus = h.paired(ranks, "model", scale=args.scale) if "model" in ranks else {}
    ppr = scorers.get("ppr") or h.baseline_scorers(ho.store, ho.item_type, ho.context_types,
                                                   ["ppr"])["ppr"]
    model = scorers.get("model")
    latency = h.time_lookups(ho, ppr, None if model is None else model.vectors,
                             prior=bool(model is not None and model.prior))
    print(h.table(results))
    if versus:
        print("\nthe model minus each baseline, paired over the same held-out pairs:")
        print(h.paired_table(versus, "model"))
    print("seconds per query: " + ", ".join(f"{k.replace('_seconds_per_query', '')} "
                                            f"{v * 1e3:.3f} ms" for k, v in latency.items()))
    if args.out:
        payload = {"protocol": h.PROTOCOL, "exclude_neighbours": args.exclude_neighbours,
                   "baselines_on": "source store (leaky)" if args.leaky else "training store",
                   "holdout": ho.meta, "latency": latency,
                   "methods": {n: r.as_dict() for n, r in results.items()},
                   "model_minus": {n: d.as_dict() for n, d in versus.items()}}
        Path(args.out).write_text(json.dumps(payload, indent=2) + "\n")
    return 0
