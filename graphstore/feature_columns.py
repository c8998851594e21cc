"""Planning a node type's feature columns: widths, statistics, vocabularies,
and turning one chunk of a node file into per-column blocks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from graphstore.errors import IngestError
from graphstore.feature_inputs import load_array, node_source
from graphstore.readers import ColumnRequest, read_chunks


@dataclass
class Column:
    name: str
    kind: str                     # numeric, multi_hot, text, array
    start: int = 0
    stop: int = 0
    file: str = ""
    mean: float = 0.0
    std: float = 1.0
    separator: str = "|"
    vocabulary: list[str] = field(default_factory=list)

    def describe(self) -> dict:
        out = {"name": self.name, "kind": self.kind, "start": self.start, "stop": self.stop,
               "file": Path(self.file).name}  # not the path: the digest is content only
        if self.kind == "numeric":
            out.update(mean=self.mean, std=self.std)
        if self.kind == "multi_hot":
            out.update(separator=self.separator, vocabulary=self.vocabulary)
        return out


@dataclass
class FeaturePlan:
    columns: dict[tuple[str, str], Column]   # (file, column) -> Column
    width: int
    options: object

    def requests(self, n) -> list[ColumnRequest]:
        reqs = [ColumnRequest(c, "float") for c in n.numeric]
        return reqs + [ColumnRequest(c, "str") for c in (*n.multi_hot, *n.text)]

    def blocks(self, n, chunk):
        for name in n.numeric:
            col = self.columns[(str(n.file), name)]
            yield col, ((chunk.columns[name] - col.mean) / col.std)[:, None]
        for name in n.multi_hot:
            col = self.columns[(str(n.file), name)]
            yield col, multi_hot_block(chunk.columns[name], col)
        for name in n.text:
            from graphstore.text import embed_texts
            yield self.columns[(str(n.file), name)], embed_texts(chunk.columns[name].to_pylist())

    def array_column(self, a) -> Column:
        return self.columns[(str(a.file), "")]

    def describe(self) -> list[dict]:
        return [c.describe() for c in sorted(self.columns.values(), key=lambda c: c.start)]


def plan_columns(nodes, arrays, options) -> FeaturePlan:
    columns: dict[tuple[str, str], Column] = {}
    width = 0

    def add(key, col, size):
        nonlocal width
        col.start, col.stop = width, width + size
        columns[key] = col
        width += size
    for n in nodes:
        stats = _scan(n, options)
        for name in n.numeric:
            mean, std = stats[name] if n.standardize else (0.0, 1.0)
            add((str(n.file), name), Column(name, "numeric", file=str(n.file), mean=mean,
                                            std=std), 1)
        for name, sep in n.multi_hot.items():
            vocab = stats[name]
            add((str(n.file), name), Column(name, "multi_hot", file=str(n.file),
                                            separator=sep, vocabulary=vocab), len(vocab))
        for name in n.text:
            from graphstore.text import EMBEDDING_DIM
            add((str(n.file), name), Column(name, "text", file=str(n.file)), EMBEDDING_DIM)
    for a in arrays:
        shape = load_array(a).shape
        add((str(a.file), ""), Column(a.file.name, "array", file=str(a.file)),
            1 if len(shape) == 1 else shape[1])
    return FeaturePlan(columns, width, options)


def _scan(n, options) -> dict:
    """Mean/std of numeric columns and the vocabulary of multi-hot columns."""
    if not n.numeric and not n.multi_hot:
        return {}
    import pyarrow.compute as pc
    sums = {c: np.zeros(3) for c in n.numeric}
    vocab: dict[str, set] = {c: set() for c in n.multi_hot}
    requests = [ColumnRequest(c, "float") for c in n.numeric] + \
        [ColumnRequest(c, "str") for c in n.multi_hot]
    for chunk in read_chunks(node_source(n), requests, options.chunk_rows):
        for c in n.numeric:
            x = chunk.columns[c]
            sums[c] += (x.size, x.sum(), np.square(x).sum())
        for c, sep in n.multi_hot.items():
            parts = pc.list_flatten(pc.split_pattern(chunk.columns[c], sep))
            vocab[c].update(v for v in pc.unique(parts).to_pylist() if v != "")
    stats = {}
    for c, (k, s, s2) in sums.items():
        mean = s / k
        std = float(np.sqrt(max(s2 / k - mean * mean, 0.0)))
        stats[c] = (float(mean), std if std > 1e-12 else 1.0)
    for c, values in vocab.items():
        if not values:
            raise IngestError(f"{n.file}: multi-hot column {c!r} has no categories")
        stats[c] = sorted(values)
    return stats


def multi_hot_block(values, col: Column) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc
    lists = pc.split_pattern(values, col.separator)
    flat = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists).to_numpy()
    slots = pc.index_in(flat, value_set=pa.array(col.vocabulary, pa.large_string()))
    slots = slots.to_numpy(zero_copy_only=False)
    block = np.zeros((len(values), len(col.vocabulary)), dtype=np.float32)
    ok = ~np.isnan(slots.astype(np.float64)) if slots.dtype.kind == "f" else np.ones_like(
        slots, dtype=bool)
    block[parents[ok], slots[ok].astype(np.int64)] = 1.0
    return block
