"""`sagewalk store info|verify`: inspect and check a graph store."""

from __future__ import annotations

import argparse
import json

from sagewalk.commands._common import add_config_args, load_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("store", help="Inspect (info) or check (verify) a store.")
    verbs = parser.add_subparsers(dest="store_verb", metavar="ACTION", required=True)
    info = verbs.add_parser("info", help="Node/edge counts, degree statistics, features.")
    info.add_argument("store", nargs="?", help="Store directory (default: graphstore.path).")
    info.add_argument("--json", action="store_true", help="Print JSON.")
    add_config_args(info)
    info.set_defaults(run=_info)
    verify = verbs.add_parser("verify", help="Check every file against its manifest hash.")
    verify.add_argument("store", nargs="?", help="Store directory (default: graphstore.path).")
    add_config_args(verify)
    verify.set_defaults(run=_verify)


def _open(args):
    from graphstore import open_store
    return open_store(args.store or load_config(args).graphstore.path)


def _info(args: argparse.Namespace) -> int:
    from graphstore.info import store_info
    info = store_info(_open(args))
    if args.json:
        print(json.dumps(info, sort_keys=True))
        return 0
    print(f"{info['path']}  (format {info['format_version']}, {info['bytes'] / 2**20:.1f} MiB, "
          f"digest {info['digest'][:16]})")
    for name, count in info["node_types"].items():
        extra = f", features {info['features'][name]}" if name in info["features"] else ""
        attrs = info["attributes"].get(name)
        extra += f", attributes {', '.join(attrs)}" if attrs else ""
        print(f"  nodes {name}: {count} ({info['id_kinds'][name]} ids{extra})")
    for name, e in info["edge_types"].items():
        print(f"  edges {name}: {e['src_type']} -> {e['dst_type']}, {e['num_edges']} edges"
              f"{', weighted' if e['weighted'] else ''}, indices {e['index_dtype']}")
        for label, stats, rows in (("out", e["out_degree"], e["src_type"]),
                                   ("in", e["in_degree"], e["dst_type"])):
            if stats["rows"]:
                print(f"    {label}-degree over {stats['rows']} {rows}: min {stats['min']} "
                      f"median {stats['median']:g} mean {stats['mean']:g} p99 "
                      f"{stats['p99']:g} max {stats['max']}, {stats['zero']} without edges")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from graphstore.info import verify_store
    store = _open(args)
    count = verify_store(store)
    print(f"{store.path}: ok, {count} files match their manifest hashes "
          f"(digest {store.digest[:16]})")
    return 0
