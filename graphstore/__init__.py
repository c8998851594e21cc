"""graphstore: the on-disk, memory-mapped multipartite graph (CSR both ways,
id maps, node features, string attributes).  See docs/graphstore.md.

    store = open_store("store/")
    csr = store.csr("rates")                 # item -> user
    items = store.ids("item").to_dense(["Toy Story (1995)"])
"""

from graphstore.arrays import build_from_arrays
from graphstore.errors import IngestError, StoreError, UnknownIdError
from graphstore.idmap import IdMap
from graphstore.store import CSR, EdgeType, Store, open_store

__all__ = ["open_store", "build_from_arrays", "Store", "CSR", "EdgeType", "IdMap",
           "StoreError", "UnknownIdError", "IngestError"]
