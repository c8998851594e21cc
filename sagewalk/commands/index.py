"""`sagewalk index`: a FAISS index over exported embeddings."""

from __future__ import annotations

import argparse

from sagewalk.commands._common import add_config_args, load_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "index", help="Build a FAISS index (exact, HNSW or IVF) over exported embeddings "
        "and report its recall against exact search.")
    add_config_args(parser)
    parser.add_argument("embeddings", metavar="EXPORT_DIR",
                        help="Directory with embeddings.npy and ids.txt (`sagewalk embed "
                        "--export`).")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="Index directory (default: EXPORT_DIR itself).")
    parser.add_argument("--kind", choices=["auto", "exact", "hnsw", "ivf", "ivf-sq8"], default=None,
                        help="Index kind (default serving.index; auto = exact below 100k "
                        "items).")
    parser.add_argument("--store", metavar="DIR", default=None,
                        help="Store to read display titles from (default graphstore.path; "
                        "skipped when it has no 'title' attribute).")
    parser.set_defaults(run=_run)


def _titles(store_path: str, item_type: str, ids_path) -> list[str] | None:
    from pathlib import Path

    from graphstore import StoreError, open_store
    if not Path(store_path).exists() or not Path(ids_path).exists():
        return None
    try:
        store = open_store(store_path)
    except StoreError:
        return None
    if item_type not in store.node_types or "title" not in store.attribute_names(item_type):
        return None
    ids = Path(ids_path).read_text(encoding="utf-8").splitlines()
    return store.attribute(item_type, "title", store.ids(item_type).to_dense(ids))


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from serving.index import build_index
    config = load_config(args)
    out = Path(args.out or args.embeddings)
    titles = _titles(args.store or config.graphstore.path, config.sampler.item_type,
                     Path(args.embeddings) / "ids.txt")
    info = build_index(Path(args.embeddings), out, kind=args.kind or config.serving.index,
                       titles=titles)
    recall = "exact search" if info.recall_at_k is None else \
        f"recall@{info.recall_k} vs exact {info.recall_at_k:.4f} ({info.recall_queries} queries)"
    print(f"index {info.kind} over {info.num_items:,} items, dim {info.dim}: {recall} -> {out}")
    return 0
