"""`sagewalk holdout`: hold out item pairs linked through one shared context."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "holdout", help="Split a store for held-out-edge evaluation: remove one edge of "
        "each sampled item-context-item link so the pair shares no context.",
        description="Writes OUT/store (the training store), OUT/pairs.tsv (query, positive, "
        "edge type, context) and OUT/holdout.json. Score it with `sagewalk evaluate "
        "--holdout OUT`. A held-out pair shares exactly one context in the source store "
        "and none in the training store; every item keeps an edge.")
    parser.add_argument("--store", metavar="DIR", required=True, help="Source store.")
    parser.add_argument("--out", metavar="DIR", required=True, help="Holdout directory.")
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
    parser.add_argument("--overwrite", action="store_true",
                        help="Replace an existing holdout directory once the new one is done.")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    import json

    from serving.holdout import load_holdout, split_store
    pairs = args.pairs if args.pairs is not None or args.fraction is not None else 3000
    out = split_store(args.store, args.out, item_type=args.item_type,
                      link_types=[t for t in args.link_types.split(",") if t] or None,
                      pairs=pairs, fraction=args.fraction, seed=args.seed,
                      overwrite=args.overwrite)
    meta = load_holdout(out).meta
    print(f"held out {meta['pairs']} of {meta['requested']} requested pairs "
          f"(links from {', '.join(meta['link_types'])}; {meta['removed_edges']} edges "
          f"removed) -> {out}")
    if meta["pairs"] < meta["requested"]:
        print(f"  only {meta['pairs']} links with exactly one shared context were found in "
              f"{meta['candidates_drawn']} draws")
    print(json.dumps({k: meta[k] for k in ("source_digest", "train_digest", "seed")}))
    return 0
