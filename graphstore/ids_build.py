"""Dense id assignment during ingest, chunk by chunk.

Pass 1 feeds every id column through a collector (memory O(distinct ids),
never O(edges)); `finish()` fixes dense ids (the rank of each external id,
or of its hash for strings) and returns a mapper for pass 2.

Integer ids that are small and non-negative use a direct table (one memory
access per id); otherwise sorted arrays and binary search.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graphstore.errors import IngestError
from graphstore.idmap import write_int_idmap, write_str_idmap


class IntCollector:
    kind = "int"

    def __init__(self, node_type: str, table_limit: int):
        self.node_type = node_type
        self.table_limit = table_limit      # largest id the presence table may hold
        self.seen = np.zeros(0, dtype=bool)  # presence table while ids stay small
        self.sorted: np.ndarray | None = None
        self.pending: list[np.ndarray] = []

    def add(self, values: np.ndarray) -> None:
        if values.size == 0:
            return
        if self.sorted is None and values.min() >= 0 and values.max() < self.table_limit:
            top = int(values.max()) + 1
            if top > self.seen.size:
                self.seen = np.concatenate([self.seen, np.zeros(top - self.seen.size, bool)])
            self.seen[values] = True
            return
        if self.sorted is None:  # leave table mode for good
            self.sorted = np.flatnonzero(self.seen).astype(np.int64)
            self.seen = np.zeros(0, dtype=bool)
        self.pending.append(np.unique(values))
        if sum(p.size for p in self.pending) > max(self.sorted.size, 1 << 20):
            self._merge()

    def _merge(self) -> None:
        self.sorted = np.unique(np.concatenate([self.sorted, *self.pending]))
        self.pending = []

    def finish(self) -> "IntMapper":
        if self.sorted is None:
            return IntMapper(self.node_type, np.flatnonzero(self.seen).astype(np.int64), True)
        self._merge()
        return IntMapper(self.node_type, self.sorted, False)


class IntMapper:
    kind = "int"

    def __init__(self, node_type: str, values: np.ndarray, use_table: bool):
        self.node_type, self.values = node_type, values
        self.table = None
        if use_table:
            self.table = np.full(int(values[-1]) + 1 if values.size else 0, -1, dtype=np.int64)
            self.table[values] = np.arange(values.size)

    def __len__(self) -> int:
        return int(self.values.size)

    def map(self, ids: np.ndarray) -> np.ndarray:
        """Dense ids (int64); -1 where an id was never collected."""
        return self.map_dense(ids, np.int64)[0]

    def map_dense(self, ids: np.ndarray, dtype) -> tuple[np.ndarray, int]:
        """(dense ids as `dtype`, index of the first unknown id or -1)."""
        if self.table is not None:
            from graphstore.kernels import table_lookup
            out = np.empty(ids.size, dtype=dtype)
            return out, int(table_lookup(ids, self.table, out))
        return _checked(self._search(ids), dtype)

    def _search(self, ids: np.ndarray) -> np.ndarray:
        pos = np.minimum(np.searchsorted(self.values, ids), max(len(self) - 1, 0))
        return np.where(self.values[pos] == ids, pos, -1) if len(self) else np.full(ids.size, -1)

    def write(self, root: Path) -> dict:
        return write_int_idmap(root, self.node_type, self.values)


def arrow_hashes(strings) -> np.ndarray:
    """FNV-1a hashes of an arrow large_string array, straight from its buffers."""
    from graphstore.kernels import fnv1a_hashes
    _, offsets, data = strings.buffers()
    offsets = np.frombuffer(offsets, dtype=np.int64)[strings.offset:strings.offset + len(strings) + 1]
    data = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(1, np.uint8)
    return fnv1a_hashes(data if data.size else np.zeros(1, np.uint8), offsets)


def _checked(dense: np.ndarray, dtype) -> tuple[np.ndarray, int]:
    missing = np.flatnonzero(dense < 0)
    return dense.astype(dtype, copy=False), int(missing[0]) if missing.size else -1


class StrCollector:
    kind = "str"

    def __init__(self, node_type: str):
        self.node_type = node_type
        self.hashes = np.zeros(0, dtype=np.uint64)   # sorted, distinct
        self.new_hashes: list[np.ndarray] = []
        self.new_strings: list = []

    def add(self, strings) -> None:
        hashes = arrow_hashes(strings)
        uniq, first = np.unique(hashes, return_index=True)
        pos = np.minimum(np.searchsorted(self.hashes, uniq), max(self.hashes.size - 1, 0))
        fresh = self.hashes[pos] != uniq if self.hashes.size else np.ones(uniq.size, bool)
        if fresh.any():
            self.new_hashes.append(uniq[fresh])
            self.new_strings.append(strings.take(first[fresh]))
            if sum(h.size for h in self.new_hashes) > max(self.hashes.size, 1 << 16):
                self._merge()

    def _merge(self) -> None:
        import pyarrow as pa
        if not self.new_hashes:
            return
        self.hashes = np.concatenate([self.hashes, *self.new_hashes])
        kept = getattr(self, "strings", pa.array([], pa.large_string()))
        self.strings = pa.concat_arrays([kept, *self.new_strings])
        # Pending ids may repeat across chunks: keep one copy of each hash, sorted.
        self.hashes, first = np.unique(self.hashes, return_index=True)
        self.strings = self.strings.take(first)
        self.new_hashes, self.new_strings = [], []

    def finish(self) -> "StrMapper":
        import pyarrow as pa
        self._merge()
        if not hasattr(self, "strings"):
            self.strings = pa.array([], pa.large_string())
        return StrMapper(self.node_type, self.hashes, self.strings)


class StrMapper:
    kind = "str"

    def __init__(self, node_type: str, hashes: np.ndarray, strings):
        self.node_type, self.hashes, self.strings = node_type, hashes, strings

    def __len__(self) -> int:
        return int(self.hashes.size)

    def map(self, strings) -> np.ndarray:
        """Dense ids (int64) of an arrow string array; -1 where never collected.
        Each hit is confirmed against the stored string: two different ids
        sharing a 64-bit hash are reported instead of merged."""
        import pyarrow.compute as pc
        hashes = arrow_hashes(strings)
        pos = np.minimum(np.searchsorted(self.hashes, hashes), max(len(self) - 1, 0))
        dense = np.where(self.hashes[pos] == hashes, pos, -1) if len(self) else \
            np.full(hashes.size, -1)
        hit = np.flatnonzero(dense >= 0)
        queries = strings if hit.size == len(strings) else strings.take(hit)
        same = pc.equal(queries, self.strings.take(dense[hit])).to_numpy(zero_copy_only=False)
        if not same.all():
            i = hit[np.flatnonzero(~same)[0]]
            raise IngestError(f"{self.node_type} ids {strings[int(i)].as_py()!r} and "
                              f"{self.strings[int(dense[i])].as_py()!r} share a 64-bit hash; "
                              "rename one of them (this is astronomically rare)")
        return dense

    def map_dense(self, strings, dtype) -> tuple[np.ndarray, int]:
        return _checked(self.map(strings), dtype)

    def write(self, root: Path) -> dict:
        _, offsets, data = self.strings.buffers()
        n = len(self.strings)
        offsets = np.frombuffer(offsets, dtype=np.int64)[self.strings.offset:
                                                          self.strings.offset + n + 1]
        blob = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
        blob = blob[offsets[0]:offsets[-1]] if n else blob[:0]
        return write_str_idmap(root, self.node_type, blob, offsets - offsets[0], self.hashes)
