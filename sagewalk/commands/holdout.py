"""`sagewalk holdout`: hold out item pairs linked through one shared context."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "holdout", help="Split a store for held-out-edge evaluation: remove one edge of "
        "each sampled item-context-item link so the pair shares no context.",
        description="Writes OUT/store (the training store), OUT/pairs.tsv (query, positive, "
        "edge type, context) and OUT/holdout.json. Score it with `sagewalk evaluate "
        "--holdout OUT`. A held-out pair shares 1..N contexts in the source store "
        "(--max-shared) and, with --cut all, none in the training store; every item keeps "
        "an edge.")
    parser.add_argument("--store", metavar="DIR", default=None, help="Source store.")
    parser.add_argument("--out", metavar="DIR", default=None, help="Holdout directory.")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--pairs", type=int, default=None,
                      help="Pairs to hold out (default 3000 unless --fraction).")
    size.add_argument("--fraction", type=float, default=None,
                      help="Pairs to hold out as a share of the link types' edges.")
    parser.add_argument("--seed", type=int, default=0, help="Random seed (default 0).")
    parser.add_argument("--item-type", default="item", help="Item node type (default item).")
    parser.add_argument("--link-types", default="",
                        help="Comma-separated edge types the links are drawn from (default: "
                        "every edge type linking the item type to another type).")
    parser.add_argument("--max-shared", type=int, default=1,
                        help="Accept pairs sharing up to this many contexts, cutting every "
                        "shared link (default 1; dense graphs need more).")
    parser.add_argument("--draw", choices=("context", "edge"), default="context",
                        help="How links are drawn: 'context' (a uniform context with two "
                        "items or more, two of its items) or 'edge' (a uniform edge j - c, "
                        "then i among c's items; favours busy contexts). Default context.")
    parser.add_argument("--cut", choices=("all", "link"), default="all",
                        help="Remove the positive's edges to every shared context ('all', "
                        "default: the pair shares none in training) or only the drawn "
                        "link's edge ('link': other shared contexts stay).")
    parser.add_argument("--benchmark", metavar="NAME", default=None,
                        help="Instead of --store/--out: build (once) benchmark graph NAME "
                        "(ml-100k, ml-1m, synth-10k, synth-50k, synth-10k-feat, "
                        "synth-10k-nested, synth-10k-nested-feat, synth-10k-fine) and its "
                        "holdout under --root; prints the holdout directory.")
    parser.add_argument("--root", metavar="DIR", default="sagewalk-bench",
                        help="--benchmark: where graphs are built (default sagewalk-bench).")
    parser.add_argument("--overwrite", action="store_true",
                        help="Replace an existing holdout directory once the new one is done.")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    import json

    from serving.benchgraphs import prepare
    from serving.holdout import HoldoutError, load_holdout, split_store
    pairs = args.pairs if args.pairs is not None or args.fraction is not None else 3000
    if args.benchmark:
        out = prepare(args.benchmark, args.root, pairs=pairs, seed=args.seed)
    elif args.store is None or args.out is None:
        raise HoldoutError("give --store SRC and --out DIR (or --benchmark NAME --root DIR)")
    else:
        out = split_store(args.store, args.out, item_type=args.item_type,
                          link_types=[t for t in args.link_types.split(",") if t] or None,
                          pairs=pairs, fraction=args.fraction, seed=args.seed,
                          max_shared=args.max_shared, draw=args.draw, cut=args.cut,
                          overwrite=args.overwrite)
    meta = load_holdout(out).meta
    print(f"held out {meta['pairs']} of {meta['requested']} requested pairs "
          f"(links from {', '.join(meta['link_types'])}; {meta['removed_edges']} edges "
          f"removed) -> {out}")
    if meta["pairs"] < meta["requested"]:
        print(f"  only {meta['pairs']} pairs sharing at most {meta['max_shared']} contexts were "
              f"found in {meta['candidates_drawn']} draws; raise --max-shared for more")
    print(json.dumps({k: meta[k] for k in ("source_digest", "train_digest", "seed")}))
    return 0
