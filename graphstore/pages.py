"""Page-level hints for memory-mapped arrays (what this process keeps mapped).

A page of a memory-mapped file that a process has touched stays in its
resident set (RssFile, and so VmHWM) until it is unmapped, even though the
page cache holds the data either way.  A job that streams through tables far
bigger than memory would otherwise show a resident set the size of the tables.
`drop` tells the kernel this process is done with a range: its page-table
entries go (MADV_DONTNEED), the data stays in the file and, while memory
allows, in the page cache, so touching it again costs a minor fault, not a
read.  Writes must reach the file first (np.memmap.flush), which `drop` does.
"""

from __future__ import annotations

import errno
import mmap

import numpy as np

FAULT_AROUND = 128 << 10   # twice Linux's default fault_around_bytes


def mapping(array: np.ndarray):
    """(mmap object, byte offset of array[0] in it), or (None, 0) for an array
    that is not memory-mapped."""
    mm = getattr(array, "_mmap", None)
    if mm is None:
        return None, 0
    base = array.ctypes.data - np.frombuffer(mm, np.uint8).ctypes.data
    return mm, base


def advise_random(array: np.ndarray, random: bool = True) -> bool:
    """Mark the mapping behind a memory-mapped array for random access
    (MADV_RANDOM): a page fault then reads its own page only.  Linux otherwise
    reads around a faulting page, up to the device's read_ahead_kb (8 MiB on
    this VM's disk), which for random walks on a store bigger than its cache
    share fills the cache with pages no walk asked for and evicts ones it will
    (measured: 300 random faults on a cold 1 GiB file made 827 MB resident,
    3 ms a fault; with the advice one page each, 0.28 ms).  random=False
    restores the default read-around (MADV_NORMAL), which fills the cache
    faster where the store fits it.  False for an array that is not
    memory-mapped."""
    mm, _ = mapping(array)
    if mm is None:
        return False
    mm.madvise(mmap.MADV_RANDOM if random else mmap.MADV_NORMAL)
    return True


def drop(array: np.ndarray, lo: int | None = None, hi: int | None = None) -> int:
    """Unmap rows lo:hi (default all) of a memory-mapped array from this
    process (rounded out to whole pages; dirty pages are written first).
    A no-op for an array that is not memory-mapped.  Returns the bytes released."""
    mm, base = mapping(array)
    if mm is None or array.size == 0:
        return 0
    row = array.itemsize * (int(np.prod(array.shape[1:])) if array.ndim > 1 else 1)
    lo = 0 if lo is None else max(0, lo)
    hi = array.shape[0] if hi is None else min(hi, array.shape[0])
    if hi <= lo:
        return 0
    start = (base + lo * row) // mmap.PAGESIZE * mmap.PAGESIZE
    end = min(len(mm), -(-(base + hi * row) // mmap.PAGESIZE) * mmap.PAGESIZE)
    if array.flags.writeable:
        mm.flush(start, end - start)   # DONTNEED must not outrun the write-back
    try:
        mm.madvise(mmap.MADV_DONTNEED, start, end - start)
    except OSError as err:
        if err.errno != errno.EINVAL:
            raise
        return 0   # the range holds mlocked pages (sampler.resident_bytes): they stay
    return end - start


def gather_rows(table: np.ndarray, rows: np.ndarray, window_bytes: int) -> np.ndarray:
    """table[rows] for a memory-mapped table, reading it in ascending row order
    one window of about `window_bytes` at a time and unmapping each window once
    read: the mapped part of `table` never exceeds one window (plus the
    kernel's fault-around), however big the table or `rows`."""
    rows = np.asarray(rows, np.int64)
    out = np.empty((rows.shape[0],) + table.shape[1:], table.dtype)
    if rows.size == 0:
        return out
    if getattr(table, "_mmap", None) is None:
        out[:] = table[rows]
        return out
    row_bytes = table.itemsize * int(np.prod(table.shape[1:]))
    window = max(1, window_bytes // max(row_bytes, 1))
    order = np.argsort(rows, kind="stable")
    ordered = rows[order]
    edges = np.searchsorted(ordered, np.arange(ordered[0] // window * window,
                                               ordered[-1] + window + 1, window))
    # A read fault maps the pages around it too (fault-around, 64 KiB by
    # default): unmap that much on either side of what was read.
    margin = -(-FAULT_AROUND // max(row_bytes, 1))
    for a, b in zip(edges[:-1], edges[1:]):
        if b > a:
            out[order[a:b]] = table[ordered[a:b]]
            drop(table, int(ordered[a]) - margin, int(ordered[b - 1]) + 1 + margin)
    return out
