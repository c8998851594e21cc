"""Neighbourhood walks over a graph that is not in memory: the same passes as
`walk_kernels.walk_block`, one step at a time, with the pages each pass will
read requested from the disk all at once before it runs.

A page fault blocks its thread, so walks over a memory-mapped CSR that is not
in the page cache wait for the disk one read at a time (~10k steps/s on this
VM's disk).  Here the walks of a whole minibatch advance together: before each
of a step's four passes every page the pass will touch is asked for
(madvise WILLNEED, `walks.will_need`), so the disk sees thousands of reads at
once and the pass then runs at memory speed.  Seeds go in ascending id order
(their item_ptr rows share pages), and each walk's RNG is keyed by (seed,
start node, walk number) as in the in-memory kernel, so the neighbourhoods are
the same ones, in the caller's order.

`resident_rows` locks the most visited part of the CSR in memory (mlock): the
offset rows of the highest-degree contexts and their item lists, which a
uniform walk reaches in proportion to degree.
"""

from __future__ import annotations

import ctypes
import mmap
import os
from pathlib import Path

import numba
import numpy as np

from graphstore.pages import advise_random, mapping
from sampler.rng import walk_state
from sampler.walk_kernels import (BAD_ID, OK, _arrive, _count_seed, _read_contexts,
                                  _to_context_positions, _to_item_positions)
from sampler.walks import will_need

SEEDS_PER_BLOCK = 4096


@numba.njit(nogil=True, cache=True)
def _start(seeds, num_walks, seed, origin, cur, state):
    for j in range(seeds.shape[0]):
        for w in range(num_walks):
            i = j * num_walks + w
            origin[i] = seeds[j]
            cur[i] = seeds[j]
            state[i] = walk_state(seed, seeds[j], w)


@numba.njit(nogil=True, cache=True)
def _count(trace, trace_ctx, seeds, rows, num_walks, ban_ptr, ban_items, walk_length,
           top_k, out_item, out_cnt, out_ctx):
    """Top-k of each seed's walks (the in-memory kernel's `_count_seed`);
    seed j's results go to row rows[j] of the outputs."""
    max_ban = 0
    for j in range(seeds.shape[0]):
        r = rows[j]
        max_ban = max(max_ban, ban_ptr[r + 1] - ban_ptr[r])
    visits = num_walks * walk_length + max_ban + 1
    bits = 4
    while (1 << bits) < 2 * visits:
        bits += 1
    shift = np.uint64(64 - bits)
    table = np.zeros((4, 1 << bits), np.int64)
    table[0, :] = -1
    used = np.empty(visits + 1, np.int64)
    h_item = np.empty(top_k, np.int64)
    h_cnt = np.empty(top_k, np.int64)
    for j in range(seeds.shape[0]):
        r = rows[j]
        _count_seed(trace, trace_ctx, j * num_walks, num_walks, seeds[j],
                    ban_items[ban_ptr[r]:ban_ptr[r + 1]], table, shift, used, h_item, h_cnt,
                    top_k, out_item[r], out_cnt[r], out_ctx[r])


def paged_visits(graph, seeds, ban_ptr, ban_items, num_walks: int, walk_length: int,
                 restart_prob: float, top_k: int, seed: int, out_item, out_cnt,
                 out_ctx) -> int:
    """Fill out_* as `neighbourhood_kernel` does; returns OK or BAD_ID."""
    order = np.argsort(seeds, kind="stable")
    t_count = graph.type_cum.shape[0]
    status = OK
    for lo in range(0, seeds.shape[0], SEEDS_PER_BLOCK):
        rows = order[lo:lo + SEEDS_PER_BLOCK]
        block = np.ascontiguousarray(seeds[rows])
        n = block.shape[0] * num_walks
        origin, cur, pos, ctx = (np.empty(n, np.int64) for _ in range(4))
        state = np.empty(n, np.uint64)
        trace = np.empty((n, walk_length), np.int64)
        trace_ctx = np.empty((n, walk_length if out_ctx.shape[1] > 0 else 0), np.int64)
        _start(block, num_walks, seed, origin, cur, state)
        for step in range(walk_length):
            rows_at = cur * t_count
            will_need(graph.item_ptr, rows_at, rows_at + t_count)
            _to_context_positions(graph.item_ptr, graph.item_ctx, graph.type_cum, n, cur, pos,
                                  state)
            will_need(graph.item_ctx, pos[pos >= 0])
            bad = _read_contexts(graph.item_ctx, graph.ctx_ptr, n, pos, ctx)
            live = ctx[ctx >= 0]
            will_need(graph.ctx_ptr, live, live + 1)
            _to_item_positions(graph.ctx_ptr, graph.ctx_item, n, ctx, pos, state)
            will_need(graph.ctx_item, pos[pos >= 0])
            bad |= _arrive(graph.item_ptr, graph.ctx_item, t_count, origin, n, step,
                           restart_prob, ctx, pos, state, cur, trace, trace_ctx)
            if bad:
                status = BAD_ID
        _count(trace, trace_ctx, block, rows, num_walks, ban_ptr, ban_items, walk_length,
               top_k, out_item, out_cnt, out_ctx)
    return status


# -- when to page, and what to keep resident -------------------------------------

def memory_limit() -> int:
    """Bytes this process may use: its cgroup's memory limit (v2 memory.max or
    v1 memory.limit_in_bytes) where one is set, else the machine's memory."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        text = Path("/proc/self/cgroup").read_text()
    except OSError:
        return total
    for line in text.splitlines():
        hid, controllers, path = line.split(":", 2)
        if hid == "0" and controllers == "":
            candidates = [Path("/sys/fs/cgroup") / path.lstrip("/") / "memory.max",
                          Path("/sys/fs/cgroup/unified") / path.lstrip("/") / "memory.max"]
        elif "memory" in controllers.split(","):
            candidates = [Path("/sys/fs/cgroup/memory") / path.lstrip("/") /
                          "memory.limit_in_bytes"]
        else:
            continue
        for c in candidates:
            try:
                value = c.read_text().strip()
            except OSError:
                continue
            if value.isdigit():
                total = min(total, int(value))
    return total


def walk_bytes(graph) -> int:
    return sum(int(a.nbytes) for a in (graph.item_ptr, graph.item_ctx, graph.ctx_ptr,
                                       graph.ctx_item))


def should_page(graph, mode: str, limit: int | None = None) -> bool:
    """mode 'on' / 'off', or 'auto': paging is a candidate when the walk arrays
    are memory-mapped and bigger than half the memory this process may use
    (the other half is the processes' own: batches, model, runtime); whether
    it runs is then measured (WalkChoice)."""
    if mode in ("on", "off"):
        return mode == "on"
    mapped = all(mapping(a)[0] is not None
                 for a in (graph.item_ptr, graph.item_ctx, graph.ctx_ptr, graph.ctx_item))
    return mapped and walk_bytes(graph) > (memory_limit() if limit is None else limit) // 2


class WalkChoice:
    """Which kernel runs the next walks of a store too big to stay cached
    (sampler.paged_walks = 'auto'): the one with the higher steps/s measured
    on this store by this process.  Both give the same neighbourhoods (a
    walk's random stream is keyed by its seed item, not its place in a call),
    so a call may run on both, one slice of its seeds each; only the speed
    differs, and it moves with the share of the CSR the page cache holds,
    which no rule on sizes reads (paged walks 20-40x plain on a cold CSR in a
    cap smaller than it, 0.2-0.5x plain in caps that cache most of it:
    benchmarks/RESULTS.md, *scale*).

    A kernel is measured on a slice: the first seeds of a call, at most
    PROBE_STEPS walk steps (at least one seed; half the call when it is
    small), the rest of the call running on the other kernel.  Until each
    kernel has PROBES measured calls (its first is not measured: it loads
    the compiled kernels), every call measures plain on such a slice and
    runs the rest paged: plain on a cold CSR in a cap is bound by one fault
    at a time (3k steps/s measured), and a whole minibatch's walks, a
    million steps, took it minutes.  Then the faster runs whole calls, and
    once in EXPLORE_EVERY x (how many times faster it is) calls the other
    measures itself on a slice again, so a cache that fills or empties
    turns the choice.  A rate is steps / seconds over a kernel's last
    WINDOW measured calls, except that an exploring call replaces the
    explored kernel's window: its older calls ran on an older cache (in a
    cap that fits most of the CSR, plain's cold probes read around and warm
    the cache the later paged calls find, and those stale figures would
    keep the choice on paged; docs/scale.md), while the running kernel's
    window is its latest calls, on the cache as it is now."""

    PROBES = 3
    EXPLORE_EVERY = 16
    WINDOW = 8
    PROBE_STEPS = 1 << 14

    def __init__(self) -> None:
        from collections import deque
        self._runs = {kernel: deque(maxlen=self.WINDOW) for kernel in (True, False)}
        self._since_other = 0
        self._advised = True           # prepare() leaves the arrays random-access
        self.calls_run = {True: 0, False: 0}      # calls each kernel ran (paged: True)
        self._best: bool | None = None

    def rate(self, paged: bool) -> float:
        """Steps/s of a kernel over its last WINDOW calls (0 before its first)."""
        runs = self._runs[paged]
        seconds = sum(s for _, s in runs)
        return sum(n for n, _ in runs) / seconds if seconds > 0 else 0.0

    @property
    def best(self) -> bool | None:
        """True: paged is ahead; None while probing."""
        return self._best

    def plan(self, seeds: int, steps_per_seed: int) -> list[tuple[bool, int]]:
        """The kernels a call of `seeds` seeds runs, in order, each over the
        next `count` seeds: [(paged, count), ...], counts summing to `seeds`."""
        if self._best is None:
            trial, main = False, True
        else:
            self._since_other += 1
            gap = self.rate(self._best) / max(self.rate(not self._best), 1e-9)
            if self._since_other < self.EXPLORE_EVERY * max(1.0, gap):
                return [(self._best, seeds)]
            self._since_other = 0
            trial, main = not self._best, self._best
        if seeds <= 1:
            if self._best is None:   # nothing to split: alternate, the less run first
                trial = self.calls_run[True] < self.calls_run[False]
            return [(trial, seeds)]
        part = min(seeds // 2, max(1, self.PROBE_STEPS // max(1, steps_per_seed)))
        return [(trial, part), (main, seeds - part)]

    def advise(self, graph, paged: bool) -> None:
        """The graph's walk arrays advised for the kernel about to run (paged:
        random access; plain: the default read-around, which plain faulting
        fills the cache with when the store fits)."""
        if paged != self._advised:
            for array in (graph.item_ptr, graph.item_ctx, graph.ctx_ptr, graph.ctx_item):
                advise_random(array, paged)
            self._advised = paged

    def record(self, paged: bool, steps: int, seconds: float) -> None:
        self.calls_run[paged] += 1
        if self.calls_run[paged] == 1:      # loaded the compiled kernels: not measured
            return
        if self._best is not None and paged != self._best:
            self._runs[paged].clear()       # an exploring call: the cache has moved since
        self._runs[paged].append((int(steps), max(float(seconds), 1e-9)))
        if self._best is None and min(len(r) for r in self._runs.values()) < self.PROBES:
            return
        best = self.rate(True) > self.rate(False)
        if best != self._best:
            import logging
            logging.getLogger(__name__).info(
                "walks: paged %.0f steps/s, plain %.0f steps/s measured; running %s",
                self.rate(True), self.rate(False), "paged" if best else "plain")
        self._best = best


def prepare(graph, mode: str, resident_bytes: int, limit: int | None = None):
    """The graph to walk: marked paged when `should_page` (with a WalkChoice
    under 'auto'), its walk arrays' mappings advised random-access (no
    read-around on a fault) and `resident_bytes` of its hot rows locked
    (sampler.paged_walks, sampler.resident_bytes)."""
    import dataclasses
    import logging
    if not should_page(graph, mode, limit):
        return graph
    for array in (graph.item_ptr, graph.item_ctx, graph.ctx_ptr, graph.ctx_item):
        advise_random(array)   # a fault reads its page, not megabytes around it
    locked = resident_rows(graph, resident_bytes)
    logging.getLogger(__name__).info(
        "paged walks%s: %.0f MiB of walk arrays, memory limit %.0f MiB, %.0f MiB locked "
        "resident", " (auto: measured against plain)" if mode == "auto" else "",
        walk_bytes(graph) / 2**20, memory_limit() / 2**20, locked / 2**20)
    return dataclasses.replace(graph, paged=True,
                               choice=WalkChoice() if mode == "auto" else None)


def resident_rows(graph, budget_bytes: int) -> int:
    """mlock the ctx_item rows of the highest-degree contexts (and the whole
    ctx_ptr and item_ptr offset arrays when they fit) within `budget_bytes`.
    Returns the bytes locked; 0 where the arrays are not mapped or the
    kernel refuses (RLIMIT_MEMLOCK)."""
    if budget_bytes <= 0:
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    locked = 0

    def lock(array, lo_byte, nbytes) -> bool:
        nonlocal locked
        if mapping(array)[0] is None or nbytes <= 0:
            return False
        base = array.ctypes.data
        start = (base + lo_byte) // mmap.PAGESIZE * mmap.PAGESIZE
        end = -(-(base + lo_byte + nbytes) // mmap.PAGESIZE) * mmap.PAGESIZE
        if locked + (end - start) > budget_bytes:
            return False
        if libc.mlock(ctypes.c_void_p(start), ctypes.c_size_t(end - start)) != 0:
            return False
        locked += end - start
        return True

    for offsets in (graph.ctx_ptr, graph.item_ptr):   # every step reads one of each
        lock(offsets, 0, offsets.nbytes)
    degree = np.diff(np.asarray(graph.ctx_ptr))
    item = graph.ctx_item.itemsize
    for c in np.argsort(-degree, kind="stable"):
        if degree[c] <= 0 or not lock(graph.ctx_item, int(graph.ctx_ptr[c]) * item,
                                      int(degree[c]) * item):
            break
    return locked
