"""`build_from_arrays`: a store from in-memory arrays, for tests of every stage."""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from graphstore.csr_build import EdgeChunk
from graphstore.errors import StoreError
from graphstore.idmap import encode_strings, write_int_idmap, write_str_idmap
from graphstore.store import Store, open_store
from graphstore.store_parts import (BuildOptions, EdgeTypeDef, write_attribute,
                                    write_edge_type, write_features)
from graphstore.writer import StoreWriter


def build_from_arrays(out_dir: str | os.PathLike, *, edges: Mapping[str, tuple],
                      node_counts: Mapping[str, int] | None = None,
                      features: Mapping[str, np.ndarray] | None = None,
                      attributes: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
                      ids: Mapping[str, Sequence[Any]] | None = None,
                      options: BuildOptions | None = None, overwrite: bool = False) -> Store:
    """Build a store from dense-id edge arrays.

    edges: {name: (src_type, dst_type, src_ids, dst_ids[, weights])} with dense
    ids 0..count-1.  node_counts defaults to max id + 1 per type.  External ids
    are str(dense id) unless `ids` gives them (ints or strings, one per node).
    """
    options = options or BuildOptions()
    parsed = {name: _parse_edges(name, spec) for name, spec in edges.items()}
    counts = _node_counts(parsed, node_counts or {})
    _check_ranges(parsed, counts)
    with StoreWriter(out_dir, overwrite=overwrite) as writer:
        root = writer.root
        node_specs = {t: {"count": n, "ids": _idmap(root, t, n, (ids or {}).get(t))}
                      for t, n in counts.items()}
        edge_specs, report = {}, {}
        for name, (edef, src, dst, w) in parsed.items():
            source = _array_source(src, dst, w, options.chunk_rows)
            edge_specs[name], report[name] = write_edge_type(root, edef, source, counts, options)
        manifest = {"node_types": node_specs, "edge_types": edge_specs,
                    "features": {t: write_features(root, t, a, counts[t], options.feature_dtype)
                                 for t, a in (features or {}).items() if _known(t, counts)},
                    "attributes": {t: {k: write_attribute(root, t, k, v, counts[t])
                                       for k, v in attrs.items()}
                                   for t, attrs in (attributes or {}).items() if _known(t, counts)},
                    "build": {"source": "arrays", "options": options.as_dict(),
                              "report": {"edge_types": report}}}
        writer.commit(manifest)
    return open_store(out_dir)


def _parse_edges(name: str, spec: tuple):
    if len(spec) not in (4, 5):
        raise StoreError(f"edges[{name!r}]: expected (src_type, dst_type, src_ids, dst_ids"
                         f"[, weights]), got a tuple of {len(spec)}")
    src_type, dst_type, src, dst = spec[:4]
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    w = None if len(spec) == 4 or spec[4] is None else np.asarray(spec[4], dtype=np.float32)
    if src.shape != dst.shape or src.ndim != 1 or (w is not None and w.shape != src.shape):
        raise StoreError(f"edges[{name!r}]: src, dst (and weights) must be 1-D of one length")
    return EdgeTypeDef(name, src_type, dst_type, w is not None), src, dst, w


def _node_counts(parsed, given: Mapping[str, int]) -> dict[str, int]:
    counts = {t: int(n) for t, n in given.items()}
    for edef, src, dst, _ in parsed.values():
        for t, arr in ((edef.src_type, src), (edef.dst_type, dst)):
            top = int(arr.max()) + 1 if arr.size else 0
            if t not in given:
                counts[t] = max(counts.get(t, 0), top)
    return counts


def _check_ranges(parsed, counts) -> None:
    for edef, src, dst, _ in parsed.values():
        for t, arr in ((edef.src_type, src), (edef.dst_type, dst)):
            if arr.size and (arr.min() < 0 or arr.max() >= counts[t]):
                raise StoreError(f"edges[{edef.name!r}]: {t} ids must be within "
                                 f"0..{counts[t] - 1}, found {int(arr.min())}..{int(arr.max())}")


def _known(node_type: str, counts) -> bool:
    if node_type not in counts:
        raise StoreError(f"unknown node type {node_type!r}; node types: {', '.join(counts)}")
    return True


def _idmap(root, node_type: str, count: int, external: Sequence[Any] | None) -> dict:
    if external is None:
        return write_int_idmap(root, node_type, np.arange(count, dtype=np.int64))
    if len(external) != count:
        raise StoreError(f"ids[{node_type!r}]: {len(external)} ids for {count} nodes")
    if all(isinstance(x, (int, np.integer)) for x in external):
        return write_int_idmap(root, node_type, np.asarray(external, dtype=np.int64))
    data, offsets = encode_strings([str(x) for x in external])
    return write_str_idmap(root, node_type, data, offsets)


def _array_source(src, dst, w, chunk_rows: int):
    def iterate():
        for a in range(0, src.size, chunk_rows):
            b = a + chunk_rows
            yield EdgeChunk(src[a:b], dst[a:b], None if w is None else w[a:b])
    return iterate
