"""Out-of-core CSR construction by counting sort in passes.

The edges come from a *source*: a callable returning a fresh iterator of
`EdgeChunk`s (rows and columns already dense ids), read from memory-mapped
scratch files or from another CSR, one chunk at a time.

1. One pass counts each row's degree (O(rows) memory).
2. Rows are cut into ranges whose edges fit the buffer budget.
3. For each range, one pass scatters that range's edges into the buffer
   (counting sort), rows are sorted and de-duplicated, and the compacted
   range is appended to the output files.

Peak memory is the buffer plus O(rows) counters, whatever the edge count;
the price is one extra read of the source per range.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from graphstore.format import make_entry


@dataclass(frozen=True)
class EdgeChunk:
    rows: np.ndarray
    cols: np.ndarray
    weights: np.ndarray | None


@dataclass(frozen=True)
class CsrStats:
    edges_in: int
    edges_out: int
    self_loops_dropped: int
    duplicates_dropped: int
    passes: int


Source = Callable[[], Iterator[EdgeChunk]]


def count_rows(source: Source, num_rows: int) -> np.ndarray:
    from graphstore.kernels import count_into
    counts = np.zeros(num_rows, dtype=np.int64)
    for chunk in source():
        count_into(chunk.rows, counts)
    return counts


def plan_ranges(counts: np.ndarray, cap_bytes: int, per_edge: int,
                per_row: int = 16) -> list[tuple[int, int]]:
    """Consecutive row ranges whose buffers (per_edge bytes per edge plus
    per_row bytes of offsets and cursors per row) fit in cap_bytes; a single
    row above the cap gets a range of its own."""
    cum = np.cumsum(counts * per_edge + per_row)
    ranges, lo, n = [], 0, counts.size
    while lo < n:
        base = cum[lo - 1] if lo else 0
        hi = max(int(np.searchsorted(cum, base + cap_bytes, side="right")), lo + 1)
        ranges.append((lo, min(hi, n)))
        lo = hi
    return ranges


def build_csr(root: Path, base: str, source: Source, *, num_rows: int, col_dtype,
              weighted: bool, buffer_bytes: int, dedupe: bool = False,
              drop_self: bool = False, sort: bool = True, presorted: bool = False,
              hashed: bool = True, counts: np.ndarray | None = None,
              num_cols: int = 0) -> tuple[dict, CsrStats, np.ndarray]:
    """Write `base`/indptr.bin, indices.bin (and weights.bin) under root.

    sort: sort each row's columns; presorted: the source already yields each
    row's columns in order (so de-duplication needs no sort); hashed: compute
    content hashes for the manifest (not for scratch CSRs); counts: each
    row's edge count when known (saves a pass).  Also returns how many
    written edges point at each of num_cols columns: the row counts of the
    transpose, so building it needs no counting pass."""
    from graphstore.kernels import count_into, sort_dedupe_rows
    col_dtype = np.dtype(col_dtype)
    passes = int(counts is None)  # reading passes over the source
    counts = count_rows(source, num_rows) if counts is None else counts
    col_counts = np.zeros(num_cols, dtype=np.int64)
    per_edge = col_dtype.itemsize + (4 if weighted else 0)
    ranges = plan_ranges(counts, buffer_bytes, per_edge)
    degrees = np.zeros(num_rows, dtype=np.int64)
    (root / base).mkdir(parents=True, exist_ok=True)
    loops = dups = 0
    with open(root / base / "indices.bin", "wb") as fcols, \
            open(root / base / "weights.bin", "wb") as fw:
        for lo, hi in ranges:
            offsets, cols, weights = _scatter_range(source, lo, hi, counts, col_dtype, weighted)
            if sort or dedupe or drop_self:
                deg, n_loops, n_dups = sort_dedupe_rows(offsets, cols, weights, weighted,
                                                        dedupe, drop_self, lo, presorted)
                loops, dups = loops + n_loops, dups + n_dups
            else:
                deg = counts[lo:hi]
            degrees[lo:hi] = deg
            kept = int(deg.sum())
            if num_cols:
                count_into(cols[:kept], col_counts)
            cols[:kept].tofile(fcols)
            if weighted:
                weights[:kept].tofile(fw)
    stats = CsrStats(int(counts.sum()), int(degrees.sum()), int(loops), int(dups),
                     passes + len(ranges))
    return _finish(root, base, degrees, col_dtype, weighted, hashed), stats, col_counts


def _scatter_range(source: Source, lo: int, hi: int, counts: np.ndarray, col_dtype,
                   weighted: bool):
    """One pass over the source: the edges of rows [lo, hi) bucketed by row."""
    from graphstore.kernels import scatter_rows
    offsets = np.zeros(hi - lo + 1, dtype=np.int64)
    np.cumsum(counts[lo:hi], out=offsets[1:])
    cols = np.empty(offsets[-1], dtype=col_dtype)
    weights = np.empty(offsets[-1] if weighted else 0, dtype=np.float32)
    cursor = offsets[:-1].copy()
    for chunk in source():
        w = chunk.weights if weighted else weights
        scatter_rows(chunk.rows, chunk.cols, w, weighted, lo, hi, cursor, cols, weights)
    return offsets, cols, weights


def _finish(root, base, degrees, col_dtype, weighted, hashed):
    indptr = np.zeros(degrees.size + 1, dtype="<i8")
    np.cumsum(degrees, out=indptr[1:])
    indptr.tofile(root / base / "indptr.bin")
    m = int(indptr[-1])
    entry = make_entry if hashed else (lambda _root, rel, dtype, shape: {"file": rel})
    entries = {"indptr": entry(root, f"{base}/indptr.bin", indptr.dtype, indptr.shape),
               "indices": entry(root, f"{base}/indices.bin", col_dtype, (m,)),
               "weights": None}
    if weighted:
        entries["weights"] = entry(root, f"{base}/weights.bin", "<f4", (m,))
    else:
        (root / base / "weights.bin").unlink()
    return entries


def csr_source(indptr: np.ndarray, indices: Path, col_dtype, weights: Path | None,
               chunk_rows: int, reverse: bool) -> Source:
    """A source reading an existing CSR (files, read with plain reads so the
    pages do not count against this process's RSS) in blocks of chunk_rows
    edges; reverse=True yields (column, row): the transpose."""
    col_dtype = np.dtype(col_dtype)

    def iterate() -> Iterator[EdgeChunk]:
        total = int(indptr[-1])
        for a in range(0, total, chunk_rows):
            # Blocks of edges, not of rows: a hub row is split across blocks,
            # so a block's memory never depends on the largest degree.
            b = min(a + chunk_rows, total)
            lo = int(np.searchsorted(indptr, a, side="right")) - 1
            hi = int(np.searchsorted(indptr, b, side="left"))
            starts = np.clip(indptr[lo:hi], a, b)
            ends = np.clip(indptr[lo + 1:hi + 1], a, b)
            rows = np.repeat(np.arange(lo, hi, dtype=np.int64), ends - starts)
            cols = read_slice(indices, col_dtype, a, b)
            w = None if weights is None else read_slice(weights, np.float32, a, b)
            yield EdgeChunk(cols, rows, w) if reverse else EdgeChunk(rows, cols, w)
    return iterate


def read_slice(path: Path, dtype, start: int, stop: int) -> np.ndarray:
    dtype = np.dtype(dtype)
    return np.fromfile(path, dtype=dtype, count=stop - start, offset=start * dtype.itemsize)
