"""numba kernels for the build's hot loops and id hashing.

Pure functions over arrays; nothing here raises or does I/O.  They are
compiled on first call (and cached on disk), never at import.
"""

from __future__ import annotations

import numba
import numpy as np

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


@numba.njit(nogil=True, cache=True)
def fnv1a_hashes(data, offsets):
    """64-bit FNV-1a hash of each byte string data[offsets[i]:offsets[i+1]].

    A fixed, documented hash (not Python's salted hash()) because the hashes
    are stored in the id map and must match in every process and version.
    """
    n = offsets.size - 1
    out = np.empty(n, dtype=np.uint64)
    for i in range(n):
        h = _FNV_OFFSET
        for j in range(offsets[i], offsets[i + 1]):
            h = (h ^ np.uint64(data[j])) * _FNV_PRIME
        out[i] = h
    return out


@numba.njit(nogil=True, cache=True)
def scatter_rows(rows, cols, weights, has_weights, lo, hi, cursor, out_cols, out_weights):
    """Counting-sort scatter of the edges whose row is in [lo, hi) into a
    buffer; cursor[r - lo] is the next free slot of row r (advanced here)."""
    for i in range(rows.size):
        r = np.int64(rows[i])
        if r >= lo and r < hi:
            p = cursor[r - lo]
            out_cols[p] = cols[i]
            if has_weights:
                out_weights[p] = weights[i]
            cursor[r - lo] = p + 1


@numba.njit(nogil=True, cache=True)
def sort_dedupe_rows(offsets, cols, weights, has_weights, dedupe, drop_self, row_lo, presorted):
    """Sort each row's columns (unless presorted), drop self loops (col ==
    row, when drop_self) and merge duplicates (summing weights, when dedupe),
    compacting in place.

    Returns (new degree per row, self loops dropped, duplicates dropped).
    """
    k = offsets.size - 1
    degrees = np.zeros(k, dtype=np.int64)
    loops = 0
    dups = 0
    w = 0
    for r in range(k):
        s, e = offsets[r], offsets[r + 1]
        if presorted:
            seg_cols = cols[s:e]
            seg_w = weights[s:e]
        else:
            order = np.argsort(cols[s:e], kind="mergesort")
            seg_cols = cols[s:e][order]
            seg_w = weights[s:e][order] if has_weights else weights[:0]
        start = w
        for j in range(e - s):
            c = seg_cols[j]
            if drop_self and np.int64(c) == row_lo + r:
                loops += 1
                continue
            if dedupe and w > start and cols[w - 1] == c:
                dups += 1
                if has_weights:
                    weights[w - 1] += seg_w[j]
                continue
            cols[w] = c
            if has_weights:
                weights[w] = seg_w[j]
            w += 1
        degrees[r] = w - start
    return degrees, loops, dups


@numba.njit(nogil=True, cache=True)
def table_lookup(values, table, out):
    """out[i] = dense id of integer external id values[i] through a direct
    table (table[id] = dense id, -1 when absent); returns the index of the
    first absent id, or -1 when every id was found."""
    size = table.size
    missing = -1
    for i in range(values.size):
        j = np.int64(values[i])
        d = table[j] if 0 <= j < size else -1
        if d < 0 and missing < 0:
            missing = i
        out[i] = d
    return missing


@numba.njit(nogil=True, cache=True)
def count_into(values, counts):
    """counts[v] += 1 for each v: O(len(values)), unlike a bincount of the
    full length per chunk."""
    for i in range(values.size):
        counts[np.int64(values[i])] += 1
