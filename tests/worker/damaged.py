"""Producer builders that meet a damaged store, for the supervisor tests
(run in spawned producer processes: "damaged:truncating_builder")."""

from __future__ import annotations

import os


def truncating_builder(spec):
    """Map the store, truncate one of its files under the mapping, read it:
    the producer dies of a real SIGBUS, as when a store file is cut short
    while producers run."""
    from graphstore import open_store

    store = open_store(spec.graphstore.path)
    name = next(iter(store.edge_types))
    indices = store.csr(name).indices
    os.truncate(indices.filename, 0)
    return int(indices[-1])  # the page is gone: SIGBUS, no Python exception
