"""The feature inputs of an ingest: node files and precomputed .npy arrays,
opened as table sources.  Read by both the column planner
(graphstore/feature_columns.py) and the writer (graphstore/features.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graphstore.errors import IngestError
from graphstore.readers import TableSource, detect
from graphstore.spec import ArrayFileSpec, IngestSpec, NodeFileSpec


@dataclass(frozen=True)
class FeatureInputs:
    nodes: tuple[NodeFileSpec, ...]
    arrays: tuple[ArrayFileSpec, ...]

    @classmethod
    def from_spec(cls, spec: IngestSpec) -> "FeatureInputs":
        return cls(spec.nodes, spec.arrays)

    def id_columns(self):
        for n in self.nodes:
            yield n.type, node_source(n), n.id
        for a in self.arrays:
            if a.ids is not None:
                yield a.type, ids_source(a.ids), 0

    def collect_implicit(self, collectors) -> None:
        """Arrays without an ids file: row i is the node with external id i."""
        import pyarrow as pa
        for a in self.arrays:
            if a.ids is None:
                rows = np.arange(load_array(a).shape[0], dtype=np.int64)
                c = collectors[a.type]
                c.add(rows if c.kind == "int" else pa.array(rows.astype(str), pa.large_string()))

    def types(self) -> list[str]:
        return sorted({n.type for n in self.nodes} | {a.type for a in self.arrays})


def node_source(n: NodeFileSpec) -> TableSource:
    return detect(n.file, n.format, n.delimiter, n.header)


def ids_source(path: Path) -> TableSource:
    if path.suffix == ".npy":
        return detect(path)
    return detect(path, "csv", "\x1f", header=False)  # one id per line, no delimiter


def load_array(a: ArrayFileSpec) -> np.ndarray:
    try:
        array = np.load(a.file, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as err:
        raise IngestError(f"{a.file}: not a readable .npy array: {err}") from None
    if array.ndim not in (1, 2) or array.dtype.kind not in "fiub":
        raise IngestError(f"{a.file}: expected a numeric [rows, d] array, got "
                          f"{array.dtype} {list(array.shape)}")
    return array
