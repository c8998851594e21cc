"""graphstore: the on-disk, memory-mapped multipartite graph (CSR both ways,
id maps, node features, string attributes).  See docs/graphstore.md.

    store = open_store("store/")
    csr = store.csr("rates")                 # item -> user
    items = store.ids("item").to_dense(["Toy Story (1995)"])

The names below are imported on first use, so `graphstore.config` (read by
the command line's config schema) does not pull in numpy.
"""

from __future__ import annotations

import importlib

_HOMES = {
    "build_from_arrays": "graphstore.arrays",
    "IngestError": "graphstore.errors", "StoreError": "graphstore.errors",
    "UnknownIdError": "graphstore.errors",
    "IdMap": "graphstore.idmap",
    "CSR": "graphstore.store", "EdgeType": "graphstore.store", "Store": "graphstore.store",
    "open_store": "graphstore.store",
}

__all__ = ["open_store", "build_from_arrays", "Store", "CSR", "EdgeType", "IdMap",
           "StoreError", "UnknownIdError", "IngestError"]


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'graphstore' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
