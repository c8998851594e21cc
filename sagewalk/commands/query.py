"""`sagewalk query ID -k 10`: related items from an index, with titles."""

from __future__ import annotations

import argparse

from sagewalk.commands._common import add_config_args, load_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("query", help="Print the items most related to an item.")
    add_config_args(parser)
    parser.add_argument("id", help="External id of the query item (as in ids.txt).")
    parser.add_argument("-k", type=int, default=None,
                        help="How many related items (default serving.top_k).")
    parser.add_argument("--index", metavar="DIR", default="index",
                        help="Index directory (`sagewalk index --out`).")
    parser.add_argument("--context", metavar="CONTEXT_ID", default=None,
                        help="MultiSage: rank within this context node's subspace "
                        "(needs --run and --embed-dir).")
    parser.add_argument("--context-type", default=None,
                        help="Node type of CONTEXT_ID (default: the only context type).")
    parser.add_argument("--run", dest="run_dir", metavar="RUN_DIR", default=None,
                        help="Run directory with model.pt (contextual queries).")
    parser.add_argument("--embed-dir", metavar="DIR", default=None,
                        help="`sagewalk embed` job directory (contextual queries).")
    parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from serving.index import ItemIndexError, RelatedItems
    config = load_config(args)
    k = args.k if args.k is not None else config.serving.top_k
    if k < 1:
        raise ItemIndexError(f"-k must be >= 1, got {k}")
    related = RelatedItems(Path(args.index))
    row = related.lookup(args.id)
    if args.context is not None:
        from serving.contextual import open_ranker
        ranker = open_ranker(config, related, args.run_dir, args.embed_dir, args.context_type)
        hits = ranker.related(args.id, args.context, k)
    else:
        hits = related.related(args.id, k)
    if args.json:
        print(json.dumps([h.__dict__ for h in hits]))
        return 0
    title = related.title(row)
    print(f"related to {args.id}" + (f" ({title})" if title and title != args.id else "")
          + (f" in context {args.context}" if args.context else "") + ":")
    for rank, h in enumerate(hits, start=1):
        label = h.id if not h.title or h.title == h.id else f"{h.id}  {h.title}"
        print(f"{rank:3d}. {h.score:6.3f}  {label}")
    return 0
