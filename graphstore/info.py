"""What `sagewalk store info` and `store verify` report."""

from __future__ import annotations

from typing import Any

import numpy as np

from graphstore.errors import StoreError
from graphstore.format import file_sha256, iter_entries
from graphstore.store import Store


def degree_stats(indptr: np.ndarray) -> dict[str, float]:
    degrees = np.diff(np.asarray(indptr))
    if degrees.size == 0:
        return {"rows": 0}
    return {"rows": int(degrees.size), "min": int(degrees.min()), "max": int(degrees.max()),
            "mean": round(float(degrees.mean()), 3), "median": float(np.median(degrees)),
            "p99": float(np.percentile(degrees, 99)), "zero": int((degrees == 0).sum())}


def store_info(store: Store) -> dict[str, Any]:
    edges = {}
    for name, et in store.edge_types.items():
        csr = store.csr(name)
        edges[name] = {"src_type": et.src_type, "dst_type": et.dst_type,
                       "num_edges": et.num_edges, "weighted": et.weighted,
                       "index_dtype": str(csr.indices.dtype),
                       "out_degree": degree_stats(csr.indptr),
                       "in_degree": degree_stats(store.csr(name, reverse=True).indptr)}
    features = {t: list(store.features(t).shape) for t in store.node_types
                if store.features(t) is not None}
    size = sum(int(np.prod(e["shape"])) * np.dtype(e["dtype"]).itemsize
               for e in iter_entries(store.manifest))
    return {"path": str(store.path), "format_version": store.manifest["format_version"],
            "digest": store.digest, "bytes": size, "node_types": store.node_types,
            "id_kinds": {t: s["ids"]["kind"] for t, s in store.manifest["node_types"].items()},
            "edge_types": edges, "features": features,
            "attributes": {t: store.attribute_names(t) for t in store.node_types
                           if store.attribute_names(t)},
            "build": store.manifest.get("build", {}).get("report", {})}


def verify_store(store: Store) -> int:
    """Check every array's SHA-256 against the manifest; returns the file count."""
    bad, count = [], 0
    for entry in iter_entries(store.manifest):
        count += 1
        if file_sha256(store.path / entry["file"]) != entry["sha256"]:
            bad.append(entry["file"])
    if bad:
        raise StoreError(f"{store.path}: {len(bad)} of {count} files do not match their "
                         f"manifest hash ({', '.join(bad[:5])}{', ...' if len(bad) > 5 else ''}"
                         "); the store was modified or damaged: rebuild it with "
                         "`sagewalk ingest`")
    return count
