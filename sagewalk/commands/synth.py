"""`sagewalk synth`: a synthetic item-user edge list with planted communities."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth", help="Stream a synthetic bipartite item-user edge list of any size.",
        description="Items belong to planted communities (item i -> community i % C); users "
        "prefer their home community; item and user degrees follow power laws. Writes the "
        "edges (TSV with header 'item<TAB>user', or an [N, 2] .npy) and the ground-truth "
        "communities (TSV 'item<TAB>community').")
    parser.add_argument("--edges", type=int, required=True, metavar="N", help="Edge count.")
    parser.add_argument("--items", type=int, default=10_000, help="Item count (default 10000).")
    parser.add_argument("--users", type=int, default=100_000,
                        help="User count (default 100000).")
    parser.add_argument("--communities", type=int, default=20,
                        help="Planted item communities (default 20).")
    parser.add_argument("--seed", type=int, default=0, help="Random seed (default 0).")
    parser.add_argument("--p-in", type=float, default=0.8,
                        help="Probability an edge stays in the user's home community.")
    parser.add_argument("--format", choices=("tsv", "npy"), default="tsv")
    parser.add_argument("--out", default="-", help="Edge file ('-': stdout, tsv only).")
    parser.add_argument("--communities-out", metavar="FILE",
                        help="Ground-truth communities TSV (default: OUT.communities.tsv; "
                        "none when writing to stdout).")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from graphstore.errors import StoreError
    from graphstore.synth import SynthParams, write_communities, write_npy, write_tsv
    try:
        params = SynthParams(args.edges, args.items, args.users, args.communities, args.seed,
                             args.p_in)
    except ValueError as err:
        raise StoreError(f"{err} (got --edges {args.edges} --items {args.items} --users "
                         f"{args.users} --communities {args.communities})") from None
    if args.out == "-":
        if args.format == "npy":
            raise StoreError("--format npy needs --out FILE (a .npy cannot stream to stdout)")
        write_tsv(params, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    elif args.format == "npy":
        write_npy(params, args.out)
    else:
        with open(args.out, "wb") as out:
            write_tsv(params, out)
    communities = args.communities_out or (None if args.out == "-"
                                           else f"{args.out}.communities.tsv")
    if communities:
        write_communities(params, communities)
    return 0
