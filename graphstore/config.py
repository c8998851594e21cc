"""[graphstore]: building and opening the on-disk CSR store."""

from __future__ import annotations

from dataclasses import dataclass

from common.schema import one_of, positive, setting


@dataclass(frozen=True, kw_only=True)
class GraphstoreConfig:
    path: str = setting("store", "Store directory that ingest writes and every other job reads.")
    memory_budget: int = setting(
        1 << 30, "Bytes of memory an ingest may use for chunk buffers and sort passes; "
        "peak RSS follows this, not the graph's size.", check=positive)
    chunk_rows: int = setting(1 << 20, "Rows read per chunk from edge and feature files.",
                              check=positive)
    duplicates: str = setting("drop", "Duplicate edges: 'drop' keeps one (weights summed), "
                              "'keep' keeps every copy.", check=one_of("drop", "keep"))
    self_loops: str = setting("drop", "Edges whose endpoints are the same node (same type): "
                              "'drop' or 'keep'.", check=one_of("drop", "keep"))
    feature_dtype: str = setting("float16", "Storage dtype of node features.",
                                 check=one_of("float16", "float32"))
