"""Plain uniform random walks on one CSR graph, at the memory-latency limit.

A step is two dependent cache misses (indptr[node], then indices[pos]).  One
walk at a time, the core waits for each miss in turn.  `interleaved_walks`
advances a block of thousands of independent walks in lockstep, one step at
a time, in two separate gather passes (ThunderRW's step interleaving): within
a pass every load is independent of the others, so the core keeps many misses
in flight.  `walks_one_at_a_time` is the straightforward kernel, kept as the
baseline; both produce identical walks because each walk has its own RNG.

A walk at a node without out-edges stays there (its remaining steps repeat it).
"""

from __future__ import annotations

import ctypes

import numba
import numpy as np

from graphstore.pages import advise_random, mapping
from sampler.prefetch import prefetch
from sampler.rng import advance, below, seed64, walk_state

OK = 0
BAD_NEIGHBOR = 1  # an indices entry is outside [0, num_nodes): the CSR is corrupt


@numba.njit(nogil=True, cache=True, inline="always")
def _start(starts, lo, seed, cur, state, out):
    for i in range(cur.shape[0]):
        cur[i] = starts[lo + i]
        state[i] = walk_state(seed, 0, lo + i)
        out[lo + i, 0] = cur[i]


@numba.njit(nogil=True, cache=True, inline="always")
def _positions(indptr, indices, cur, state, pos):
    """Pass 1 of a step: every walk's indptr gather; the loads are independent.
    pos[i] = the edge walk i takes (-1: no out-edges)."""
    for i in range(cur.shape[0]):
        a = indptr[cur[i]]
        d = indptr[cur[i] + 1] - a
        s = advance(state[i])
        state[i] = s
        p = a + below(s, d) if d > 0 else -1
        pos[i] = p
        if p >= 0:
            prefetch(indices, p)  # pass 2's load starts now


@numba.njit(nogil=True, cache=True, inline="always")
def _gather(indptr, indices, lo, step, pos, cur, out):
    """Pass 2: every walk's indices gather, again independent of each other.
    Returns BAD_NEIGHBOR if an id is out of range (the walk stays put)."""
    num_nodes = indptr.shape[0] - 1
    status = OK
    for i in range(cur.shape[0]):
        p = pos[i]
        if p >= 0:
            nxt = np.int64(indices[p])
            if nxt < 0 or nxt >= num_nodes:
                status = BAD_NEIGHBOR
                nxt = cur[i]
            cur[i] = nxt
            prefetch(indptr, nxt)  # the next step's pass 1 load
        out[lo + i, step] = cur[i]
    return status


@numba.njit(nogil=True, cache=True)
def _walk_block(indptr, indices, starts, lo, length, seed, out, cur, pos, state):
    """Walks lo..lo+len(cur)-1 in lockstep, in memory: the same two passes
    `paged_random_walks` runs from Python with paging between them."""
    _start(starts, lo, seed, cur, state, out)
    status = OK
    for step in range(1, length + 1):
        _positions(indptr, indices, cur, state, pos)
        status = max(status, _gather(indptr, indices, lo, step, pos, cur, out))
    return status


@numba.njit(nogil=True, cache=True, parallel=True)
def interleaved_walks_kernel(indptr, indices, starts, length, seed, block, threads, out):
    """Walk w starts at starts[w]; out[w] = its length+1 nodes.  Threads take
    blocks round-robin; each thread allocates its scratch once."""
    n = starts.shape[0]
    num_blocks = (n + block - 1) // block
    threads = max(1, min(threads, num_blocks))
    status = np.zeros(threads, np.int64)
    for t in numba.prange(threads):
        cur = np.empty(block, np.int64)
        pos = np.empty(block, np.int64)
        state = np.empty(block, np.uint64)
        for b in range(t, num_blocks, threads):
            lo = b * block
            m = min(block, n - lo)
            st = _walk_block(indptr, indices, starts, lo, length, seed, out, cur[:m],
                             pos[:m], state[:m])
            status[t] = max(status[t], st)
    return status.max() if threads > 0 else OK


@numba.njit(nogil=True, cache=True, parallel=True)
def one_at_a_time_kernel(indptr, indices, starts, length, seed, out):
    """The baseline: each walk runs to its end before the next starts."""
    num_nodes = indptr.shape[0] - 1
    n = starts.shape[0]
    bad = 0
    for w in numba.prange(n):
        node = np.int64(starts[w])
        s = walk_state(seed, 0, w)
        out[w, 0] = node
        for step in range(1, length + 1):
            a = indptr[node]
            d = indptr[node + 1] - a
            s = advance(s)
            if d > 0:
                nxt = np.int64(indices[a + below(s, d)])
                if nxt < 0 or nxt >= num_nodes:
                    bad += 1
                    nxt = node
                node = nxt
            out[w, step] = node
    return BAD_NEIGHBOR if bad > 0 else OK


def _check(indptr, indices, starts, length):
    if indptr.ndim != 1 or indptr.shape[0] < 1 or indptr.dtype != np.int64:
        raise ValueError(f"indptr: expected a 1-d int64 array of num_nodes+1 offsets, "
                         f"got dtype {indptr.dtype}, shape {indptr.shape}")
    if int(indptr[-1]) != indices.shape[0]:
        raise ValueError(f"indptr[-1] = {int(indptr[-1])} but indices has "
                         f"{indices.shape[0]} entries; the CSR arrays do not belong together")
    if length < 0:
        raise ValueError(f"length: must be >= 0, got {length}")
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    num_nodes = indptr.shape[0] - 1
    if starts.size and (starts.min() < 0 or starts.max() >= num_nodes):
        bad = starts[(starts < 0) | (starts >= num_nodes)][0]
        raise ValueError(f"start node {bad} is outside [0, {num_nodes}); "
                         "starts must be dense node ids of this graph")
    return starts


def random_walks(indptr, indices, starts, length: int, seed: int, *,
                 block: int = 4096, interleave: bool = True) -> np.ndarray:
    """Uniform random walks: int64 [len(starts), length+1], row w = walk w's nodes.

    Deterministic in (starts, length, seed) whatever the thread count or block.
    """
    starts = _check(indptr, indices, starts, length)
    if block <= 0:
        raise ValueError(f"block: must be > 0, got {block}")
    out = np.empty((starts.shape[0], length + 1), np.int64)
    seed = seed64(seed)
    if interleave:
        status = interleaved_walks_kernel(indptr, indices, starts, length, seed, block,
                                          numba.get_num_threads(), out)
    else:
        status = one_at_a_time_kernel(indptr, indices, starts, length, seed, out)
    if status == BAD_NEIGHBOR:
        raise ValueError(f"indices holds a node id outside [0, {indptr.shape[0] - 1}); "
                         "the CSR is corrupt: rebuild the store")
    return out


# -- graphs bigger than memory -------------------------------------------------

def paged_random_walks(indptr, indices, starts, length: int, seed: int, *,
                       block: int = 4096) -> np.ndarray:
    """`random_walks` for a CSR memory-mapped from a disk it does not fit in
    the cache of.  A page fault blocks its thread, so one walk after another
    waits for the disk one read at a time.  Here each gather pass first asks
    the kernel for every page the pass will touch (madvise WILLNEED, which
    starts the reads without waiting), so the disk sees many reads at once.
    The passes are `random_walks`' own (`_positions`, `_gather`), called once
    per step per block instead of inside one kernel.  Same walks as
    random_walks (same per-walk RNG)."""
    starts = _check(indptr, indices, starts, length)
    seed = seed64(seed)
    n, num_nodes = starts.shape[0], indptr.shape[0] - 1
    advise_random(indptr)      # a fault (a pass will_need left to fault) reads its page only
    advise_random(indices)
    out = np.empty((n, length + 1), np.int64)
    for lo in range(0, n, block):
        m = min(block, n - lo)
        cur, pos, state = np.empty(m, np.int64), np.empty(m, np.int64), np.empty(m, np.uint64)
        _start(starts, lo, seed, cur, state, out)
        for step in range(1, length + 1):
            will_need(indptr, cur, cur + 1)
            _positions(indptr, indices, cur, state, pos)
            will_need(indices, pos[pos >= 0])
            if _gather(indptr, indices, lo, step, pos, cur, out) != OK:
                raise ValueError(f"indices holds a node id outside [0, {num_nodes}); "
                                 "the CSR is corrupt: rebuild the store")
    return out


# Advice is worth its cost only where enough of the pages are missing.  One
# madvise call costs ~1.5 us on a page already cached (measured on this VM:
# 240k calls over a resident 200 MB file); one fault the walk then waits for
# costs a 4 KiB read, 72 us at queue depth 1 on an idle disk
# (benchmarks/disk_walks.py) and 280 us with the disk busy (the read-around
# measurement in graphstore/pages.py).  Skipping the advice pays below a miss
# rate of 1.5/280 to 1.5/72, so a pass is left to fault only when at most
# 1 in 256 of its sampled pages is missing.
RESIDENCY_SAMPLE = 512
ADVISE_FROM_MISS_RATE = 1 / 256


def will_need(array, *index_arrays) -> int:
    """Ask the kernel to start reading the pages of array[i] for every given
    index (contiguous runs coalesced into one call).  A no-op unless `array` is
    a np.memmap, and where a sample of the pages (mincore) shows nearly all of
    them cached already (ADVISE_FROM_MISS_RATE): then the calls would cost
    more CPU than the few faults they save.  Returns the number of madvise
    calls made (from a numba loop: thousands of runs a pass cost
    microseconds, not a Python call each)."""
    import mmap
    mm, base = mapping(array)                         # base: array[0]'s offset in it
    if mm is None or not index_arrays:
        return 0
    addr = array.ctypes.data - base                   # the mapping's start
    offsets = np.concatenate([np.asarray(ix, np.int64) for ix in index_arrays])
    pages = np.unique((base + offsets * array.itemsize) // mmap.PAGESIZE)
    if pages.size == 0:
        return 0
    first = np.concatenate([[0], np.flatnonzero(np.diff(pages) != 1) + 1])
    if first.size > 4 * RESIDENCY_SAMPLE:
        sample = pages[np.linspace(0, pages.size - 1, RESIDENCY_SAMPLE).astype(np.int64)]
        if missing_pages(addr, sample, mmap.PAGESIZE) < ADVISE_FROM_MISS_RATE * sample.size:
            return 0
    lengths = np.diff(np.append(first, pages.size))
    _advise_runs(addr, pages[first], lengths, mmap.PAGESIZE, mmap.MADV_WILLNEED)
    return int(first.size)


def _libc(name: str, *argtypes):
    """libc's `name` for numba to call: every argument a C integer type
    (addresses as size_t), returning int."""
    fn = getattr(ctypes.CDLL(None, use_errno=True), name)
    fn.argtypes = argtypes
    fn.restype = ctypes.c_int
    return fn


_madvise = _libc("madvise", ctypes.c_size_t, ctypes.c_size_t, ctypes.c_int)
_mincore = _libc("mincore", ctypes.c_size_t, ctypes.c_size_t, ctypes.c_size_t)


def missing_pages(addr: int, pages: np.ndarray, pagesize: int) -> int:
    """How many of the given pages of the mapping at `addr` are not in memory
    (mincore, one page a call); a page mincore cannot report counts as missing."""
    return int(_missing(addr, np.ascontiguousarray(pages, np.int64), pagesize,
                        np.zeros(1, np.uint8)))


@numba.njit(nogil=True)   # not cached: the addresses of libc's functions are this process's
def _missing(addr, pages, pagesize, vec):
    missing = 0
    for i in range(pages.shape[0]):
        if _mincore(addr + pages[i] * pagesize, pagesize, vec.ctypes.data) != 0 \
                or (vec[0] & 1) == 0:
            missing += 1
    return missing


@numba.njit(nogil=True)   # not cached: the address of libc's madvise is this process's
def _advise_runs(addr, starts, lengths, pagesize, advice):
    failed = 0
    for i in range(starts.shape[0]):
        if _madvise(addr + starts[i] * pagesize, lengths[i] * pagesize, advice) != 0:
            failed += 1
    return failed
