"""[serving]: all-node embeddings, the ANN index, queries and evaluation."""

from __future__ import annotations

from dataclasses import dataclass

from common.schema import in_range, one_of, positive, setting


@dataclass(frozen=True, kw_only=True)
class ServingConfig:
    chunk_nodes: int = setting(65536, "Nodes per embedding chunk (the unit of resume).",
                               check=positive)
    processes: int = setting(2, "Local processes for layer-wise embedding.", check=positive)
    index: str = setting("auto", "'exact', 'hnsw', 'ivf', 'ivf-sq8' (a byte a dimension) or "
                         "'auto' (exact below 100k items).",
                         check=one_of("auto", "exact", "hnsw", "ivf", "ivf-sq8"))
    host: str = setting("127.0.0.1", "Address `sagewalk serve` binds.")
    port: int = setting(8750, "Port `sagewalk serve` binds.", check=in_range(1, 65535))
    top_k: int = setting(10, "Default number of related items returned.", check=positive)
