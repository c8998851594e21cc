"""`sagewalk ingest`: edge files (and node files) -> a graph store."""

from __future__ import annotations

import argparse
import json
import sys

from sagewalk.commands._common import add_config_args, load_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ingest", help="Build a graph store from edge files (simple form or a TOML spec).",
        description="Simple form: --edges FILE --src-type A --dst-type B (header line; the "
        "first two columns are the endpoints, an optional third numeric column the weight). "
        "General form: --spec SPEC.toml (several edge files and types, chosen columns, node "
        "features and attributes; see docs/graphstore.md).")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--edges", metavar="FILE", help="Edge file (CSV, TSV, Parquet, .npy).")
    source.add_argument("--spec", metavar="SPEC.toml", help="TOML ingest spec.")
    parser.add_argument("--src-type", help="Node type of the first column (simple form).")
    parser.add_argument("--dst-type", help="Node type of the second column (simple form).")
    parser.add_argument("--edge-type", help="Edge type name (simple form; default SRC-DST).")
    parser.add_argument("--out", metavar="DIR", help="Store directory to create "
                        "(default: graphstore.path from the config).")
    parser.add_argument("--overwrite", action="store_true",
                        help="Replace an existing store at --out (only once the build succeeds).")
    parser.add_argument("--json", action="store_true", help="Print the build report as JSON.")
    add_config_args(parser)
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from graphstore.store_parts import BuildOptions
    from graphstore.errors import IngestError
    from graphstore.ingest import ingest
    from graphstore.spec import load_spec, simple_spec
    config = load_config(args)
    _interrupt_on_sigterm()
    if args.edges is not None:
        if not args.src_type or not args.dst_type:
            raise IngestError("--edges needs --src-type and --dst-type, e.g. "
                              "--edges edges.tsv --src-type item --dst-type user")
        spec = simple_spec(args.edges, args.src_type, args.dst_type, args.edge_type)
    else:
        spec = load_spec(args.spec)
    out = args.out or config.graphstore.path
    store, report = ingest(spec, out, BuildOptions.from_config(config.graphstore),
                           overwrite=args.overwrite)
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        _print_report(store, report, sys.stdout)
    return 0


def _interrupt_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the build directory is removed on the way
    out instead of being left half-written."""
    import signal

    def handler(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)


def _print_report(store, report: dict, out) -> None:
    print(f"built {store.path} in {report['seconds']:.2f} s", file=out)
    for name, count in store.node_types.items():
        print(f"  nodes {name}: {count}", file=out)
    for name, r in report["edge_types"].items():
        et = store.edge_types[name]
        print(f"  edges {name} ({et.src_type} -> {et.dst_type}): {r['edges_out']} kept of "
              f"{r['rows_read']} rows; dropped {r['duplicates_dropped']} duplicates, "
              f"{r['self_loops_dropped']} self loops", file=out)
    for name, r in report["node_types"].items():
        print(f"  node data {name}: {r['with_node_data']} of {r['nodes']} nodes, "
              f"feature dim {r['feature_dim']}", file=out)
