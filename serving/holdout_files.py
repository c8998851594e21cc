"""Writing a holdout directory's parts: the training store (the source store
less the removed edges, through graphstore's build API: every node, id,
feature row and attribute kept, dense ids unchanged), pairs.tsv and
removed.tsv.  serving/holdout.py decides what is removed and renames the
finished directory into place."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def type_of(ctx: np.ndarray, offsets, context_types) -> np.ndarray:
    starts = np.asarray([offsets[t] for t in context_types])
    return np.searchsorted(starts, ctx, side="right") - 1


def removed_by_type(graph, split, offsets, context_types, store, item_type
                     ) -> dict[str, np.ndarray]:
    """{edge type: int64 keys item * num_contexts + context} of the removed edges."""
    items = np.searchsorted(graph.item_indptr, split.removed, side="right") - 1
    contexts = graph.item_indices[split.removed]
    kind = type_of(contexts, offsets, context_types)
    out = {}
    for k, name in enumerate(context_types):
        sel = kind == k
        n_ctx = store.node_types[other_type(store, name, item_type)]
        out[name] = np.sort(items[sel] * n_ctx + (contexts[sel] - offsets[name]))
    return out


def other_type(store, edge_type: str, item_type: str) -> str:
    et = store.edge_types[edge_type]
    return et.dst_type if et.src_type == item_type else et.src_type


def write_training_store(store, path: Path, removed: dict[str, np.ndarray], item_type: str):
    from graphstore import build_from_arrays
    from graphstore.store_parts import BuildOptions
    edges = {}
    for name, et in store.edge_types.items():
        csr = store.csr(name)
        indptr = np.asarray(csr.indptr, np.int64)
        src = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
        dst = np.asarray(csr.indices, np.int64)
        keep = np.ones(len(src), bool)
        if name in removed and len(removed[name]):
            item, ctx = (src, dst) if et.src_type == item_type else (dst, src)
            key = item * store.node_types[other_type(store, name, item_type)] + ctx
            keep = ~np.isin(key, removed[name])
        weights = None if csr.weights is None else np.asarray(csr.weights, np.float32)[keep]
        edges[name] = (et.src_type, et.dst_type, src[keep], dst[keep], weights)
    feats = {t: np.asarray(store.features(t)) for t in store.node_types
             if store.features(t) is not None}
    dtype = "float16" if feats and all(f.dtype == np.float16 for f in feats.values()) \
        else "float32"
    attrs = {t: {a: store.attribute(t, a, np.arange(n)) for a in store.attribute_names(t)}
             for t, n in store.node_types.items() if store.attribute_names(t)}
    options = BuildOptions(duplicates="keep", self_loops="keep", feature_dtype=dtype)
    return build_from_arrays(path, edges=edges, node_counts=store.node_types, features=feats,
                             attributes=attrs, ids=external_ids(store), options=options)


def external_ids(store) -> dict[str, list]:
    out = {}
    for t, n in store.node_types.items():
        ids = store.ids(t)
        out[t] = (np.asarray(ids.values, np.int64) if ids.kind == "int"
                  else ids.to_external(np.arange(n)))
    return out


def write_pairs(store, path: Path, split, offsets, context_types, item_type) -> None:
    kind = type_of(split.contexts, offsets, context_types)
    items = store.ids(item_type)
    q, p = items.to_external(split.queries), items.to_external(split.positives)
    with open(path, "w", encoding="utf-8") as f:
        f.write("# query\tpositive\tedge_type\tcontext (the positive's removed edge)\n")
        for k, name in enumerate(context_types):
            sel = np.flatnonzero(kind == k)
            ctx = store.ids(other_type(store, name, item_type)).to_external(
                split.contexts[sel] - offsets[name])
            for row, c in zip(sel.tolist(), ctx):
                f.write(f"{q[row]}\t{p[row]}\t{name}\t{c}\n")


def write_removed(store, path: Path, removed: dict[str, np.ndarray], item_type: str) -> None:
    items = store.ids(item_type)
    with open(path, "w", encoding="utf-8") as f:
        f.write("# item\tedge_type\tcontext (source-store edges not in the training store)\n")
        for name, keys in removed.items():
            other = store.ids(other_type(store, name, item_type))
            n_ctx = len(other)
            for i, c in zip(items.to_external(keys // n_ctx), other.to_external(keys % n_ctx)):
                f.write(f"{i}\t{name}\t{c}\n")
