"""Numba kernels for item -> context -> item walks with visit counting.

Layout of the graph arrays: see sampler/graph.py.  The walks of a block of
seeds advance in lockstep, one hop per gather pass (four passes per step), so
the loads of different walks overlap.  Each walk's RNG is keyed by (seed,
start node, walk number): results do not depend on blocks or threads.

Visit counting uses a small per-thread hash table sized to one seed's visits;
only the slots a seed used are reset.  Banned items (the seed itself, the
other side of a training pair) get a large negative count so they can never
enter the top K.
"""

from __future__ import annotations

import numba
import numpy as np

from sampler.prefetch import prefetch
from sampler.rng import advance, below, unit, walk_state

BANNED = -(1 << 30)
OK = 0
BAD_ID = 1  # a context or item id outside the graph: the store's CSR is corrupt


@numba.njit(nogil=True, cache=True)
def _pick_slot(item_ptr, type_cum, item, u):
    """(start, degree) of the slot a step from `item` takes: slot t with
    probability proportional to its weight among slots where item has edges."""
    t_count = type_cum.shape[0]
    base = item * t_count
    total = 0.0
    prev = 0.0
    for t in range(t_count):
        if item_ptr[base + t + 1] > item_ptr[base + t]:
            total += type_cum[t] - prev
        prev = type_cum[t]
    if total <= 0.0:
        return 0, 0
    target = u * total
    prev = 0.0
    last = -1
    for t in range(t_count):
        w = type_cum[t] - prev
        prev = type_cum[t]
        if item_ptr[base + t + 1] > item_ptr[base + t] and w > 0.0:
            last = t
            target -= w
            if target < 0.0:
                break
    a = item_ptr[base + last]
    return a, item_ptr[base + last + 1] - a


@numba.njit(nogil=True, cache=True, inline="always")
def step_slot(item_ptr, type_cum, item, s):
    """(start, degree, state) of the contexts a step from `item` picks among.
    One context type: the item's whole row, no draw.  Several: a weighted
    slot (`_pick_slot`), which uses one draw of `s`."""
    if type_cum.shape[0] == 1:
        a = item_ptr[item]
        return a, item_ptr[item + 1] - a, s
    a, d = _pick_slot(item_ptr, type_cum, item, unit(s))
    return a, d, advance(s)


@numba.njit(nogil=True, cache=True)
def walk_block(item_ptr, item_ctx, ctx_ptr, ctx_item, type_cum, origin, n, length,
               restart_prob, cur, pos, ctx, state, trace, trace_ctx):
    """Advance walks 0..n-1 (already started at cur == origin) for `length`
    steps.  trace[i, s] = item reached at step s (-1: dead end, walk restarts),
    trace_ctx[i, s] = global context id passed through (if trace_ctx has columns).
    Each pass prefetches what the next one loads.  Returns True if an id was
    out of range (a corrupt graph; the walk stays put instead of reading it)."""
    bad = False
    for step in range(length):
        _to_context_positions(item_ptr, item_ctx, type_cum, n, cur, pos, state)
        bad |= _read_contexts(item_ctx, ctx_ptr, n, pos, ctx)
        _to_item_positions(ctx_ptr, ctx_item, n, ctx, pos, state)
        bad |= _arrive(item_ptr, ctx_item, type_cum.shape[0], origin, n, step, restart_prob,
                       ctx, pos, state, cur, trace, trace_ctx)
    return bad


@numba.njit(nogil=True, cache=True)
def _to_context_positions(item_ptr, item_ctx, type_cum, n, cur, pos, state):
    """Pass 1: each walk's item -> a position among its contexts (-1: none)."""
    for i in range(n):
        a, d, s = step_slot(item_ptr, type_cum, cur[i], advance(state[i]))
        state[i] = s
        p = a + below(s, d) if d > 0 else -1
        pos[i] = p
        if p >= 0:
            prefetch(item_ctx, p)


@numba.njit(nogil=True, cache=True)
def _read_contexts(item_ctx, ctx_ptr, n, pos, ctx):
    """Pass 2: the context node at each position."""
    num_ctx = ctx_ptr.shape[0] - 1
    bad = False
    for i in range(n):
        p = pos[i]
        g = -1
        if p >= 0:
            g = np.int64(item_ctx[p])
            if np.uint64(g) >= np.uint64(num_ctx):  # one compare: also int64 ids below 0
                bad = True
                g = -1
        ctx[i] = g
        if g >= 0:
            prefetch(ctx_ptr, g)
    return bad


@numba.njit(nogil=True, cache=True)
def _to_item_positions(ctx_ptr, ctx_item, n, ctx, pos, state):
    """Pass 3: each context -> a position among its items (-1: none)."""
    for i in range(n):
        g = ctx[i]
        s = advance(state[i])
        state[i] = s
        p = -1
        if g >= 0:
            a = ctx_ptr[g]
            d = ctx_ptr[g + 1] - a
            if d > 0:
                p = a + below(s, d)
                prefetch(ctx_item, p)
        pos[i] = p


@numba.njit(nogil=True, cache=True)
def _arrive(item_ptr, ctx_item, num_slots, origin, n, step, restart_prob, ctx, pos, state,
            cur, trace, trace_ctx):
    """Pass 4: record the item reached, then restart with restart_prob (a
    dead end restarts always)."""
    track = trace_ctx.shape[1] > 0
    num_items = (item_ptr.shape[0] - 1) // num_slots
    bad = False
    for i in range(n):
        p = pos[i]
        s = advance(state[i])
        state[i] = s
        nxt = -1
        if p >= 0:
            nxt = np.int64(ctx_item[p])
            if np.uint64(nxt) >= np.uint64(num_items):  # one compare: also ids below 0
                bad = True
                nxt = -1
        if nxt < 0:
            p = -1
        if p >= 0:
            trace[i, step] = nxt
            cur[i] = origin[i] if unit(s) < restart_prob else nxt
            prefetch(item_ptr, cur[i] * num_slots)
        else:
            trace[i, step] = -1
            cur[i] = origin[i]
        if track:
            trace_ctx[i, step] = ctx[i] if p >= 0 else -1
    return bad


@numba.njit(nogil=True, cache=True, inline="always")
def _heap_worse(ci, ii, cj, ij):
    """Is (count ci, order ii) ranked below (cj, ij)?  More visits first, then
    the item visited first."""
    return ci < cj or (ci == cj and ii > ij)


@numba.njit(nogil=True, cache=True)
def _sift_down(h_item, h_cnt, size, i, item, cnt):
    """Place (item, cnt) at heap slot i, moving worse children up."""
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        w = left
        if left + 1 < size and _heap_worse(h_cnt[left + 1], h_item[left + 1],
                                           h_cnt[left], h_item[left]):
            w = left + 1
        if not _heap_worse(h_cnt[w], h_item[w], cnt, item):
            break
        h_item[i] = h_item[w]
        h_cnt[i] = h_cnt[w]
        i = w
    h_item[i] = item
    h_cnt[i] = cnt


@numba.njit(nogil=True, cache=True)
def _heap_push(h_item, h_cnt, size, k, item, cnt):
    """Keep the k best in a min-heap (root = worst kept).  Returns the new size."""
    if size == k:
        if _heap_worse(h_cnt[0], h_item[0], cnt, item):
            _sift_down(h_item, h_cnt, size, 0, item, cnt)
        return size
    i = size
    while i > 0:
        parent = (i - 1) // 2
        if not _heap_worse(cnt, item, h_cnt[parent], h_item[parent]):
            break
        h_item[i] = h_item[parent]
        h_cnt[i] = h_cnt[parent]
        i = parent
    h_item[i] = item
    h_cnt[i] = cnt
    return size + 1


@numba.njit(nogil=True, cache=True)
def _heap_drain(h_item, h_cnt, size, out_item, out_cnt):
    """Empty the heap into out_* best first (pops come out worst first)."""
    for last in range(size - 1, -1, -1):
        out_item[last] = h_item[0]
        out_cnt[last] = h_cnt[0]
        if last > 0:
            _sift_down(h_item, h_cnt, last, 0, h_item[last], h_cnt[last])


@numba.njit(nogil=True, cache=True, inline="always")
def _slot(keys, shift, item):
    """The slot of `item` in an open-addressing table (linear probing): where
    it is, or the empty (-1) slot where it goes."""
    mask = keys.shape[0] - 1
    h = np.int64((np.uint64(item) * np.uint64(0x9E3779B97F4A7C15)) >> shift)
    while keys[h] != item and keys[h] != -1:
        h = (h + 1) & mask
    return h


@numba.njit(nogil=True, cache=True)
def _count_seed(trace, trace_ctx, row0, rows, seed_node, bans, table, shift, used,
                h_item, h_cnt, top_k, out_item, out_cnt, out_ctx):
    """Visit counts of one seed's walks -> its top_k items (best first), their
    counts and (if out_ctx has columns) each one's majority context.

    Counts live in a small per-thread hash table (rows: key, count, majority
    candidate, votes) sized to the seed's visits, so it stays in L1/L2 where
    a counter array over all items would miss cache on every visit and cost
    O(num_items) memory per thread.  Only the slots used are reset."""
    nu = _tally(trace, trace_ctx, row0, rows, seed_node, bans, table, shift, used,
                out_ctx.shape[0] > 0)
    _select(table, used, nu, h_item, h_cnt, top_k, out_item, out_cnt, out_ctx)
    for q in range(nu):
        h = used[q]
        table[0, h] = -1
        table[1, h] = 0
        table[3, h] = 0


@numba.njit(nogil=True, cache=True)
def _tally(trace, trace_ctx, row0, rows, seed_node, bans, table, shift, used, track):
    """Count the seed's visits; used[:nu] = slots in first-visit order (bans first)."""
    keys, counts, cand, votes = table[0], table[1], table[2], table[3]
    nu = 0
    for k in range(bans.shape[0] + 1):
        b = seed_node if k == 0 else bans[k - 1]
        h = _slot(keys, shift, b)
        if keys[h] == -1:
            keys[h] = b
            used[nu] = h
            nu += 1
        counts[h] = BANNED
    for r in range(row0, row0 + rows):
        for s in range(trace.shape[1]):
            v = trace[r, s]
            if v < 0:
                continue
            h = _slot(keys, shift, v)
            # Branch-free append: a mispredicted branch per visit would stop the
            # core running ahead to the next visits.
            used[nu] = h
            nu += keys[h] == -1
            keys[h] = v
            c = counts[h]
            counts[h] = c + 1
            if track and c >= 0:  # streaming majority vote (Boyer-Moore)
                g = trace_ctx[r, s]
                if votes[h] == 0:
                    cand[h] = g
                    votes[h] = 1
                elif cand[h] == g:
                    votes[h] += 1
                else:
                    votes[h] -= 1
    return nu


@numba.njit(nogil=True, cache=True)
def _select(table, used, nu, h_item, h_cnt, top_k, out_item, out_cnt, out_ctx):
    """Top k by (count, first-visit order).  used[] is in first-visit order, so
    a tie never displaces a kept item and one comparison with the heap's root
    rejects most candidates."""
    track = out_ctx.shape[0] > 0
    size = 0
    for q in range(nu):
        c = table[1, used[q]]
        if c <= 0 or (size == top_k and _heap_worse(c, q, h_cnt[0], h_item[0])):
            continue
        size = _heap_push(h_item, h_cnt, size, top_k, q, c)
    _heap_drain(h_item, h_cnt, size, out_item, out_cnt)
    for q in range(top_k):
        h = used[out_item[q]] if q < size else -1
        if q >= size:
            out_item[q] = -1
            out_cnt[q] = 0
        else:
            out_item[q] = table[0, h]
        if track:
            out_ctx[q] = table[2, h] if q < size else -1


@numba.njit(nogil=True, cache=True, parallel=True)
def neighbourhood_kernel(item_ptr, item_ctx, ctx_ptr, ctx_item, type_cum, seeds, ban_ptr,
                         ban_items, num_walks, walk_length, restart_prob, top_k, seed,
                         threads, block_seeds, out_item, out_cnt, out_ctx):
    """Top-k visited items of `num_walks` walks of `walk_length` steps from
    each seed.  out_ctx [n, top_k], or [n, 0] for no majority context.
    Returns OK, or BAD_ID if the graph arrays hold an id out of range."""
    n = seeds.shape[0]
    num_blocks = (n + block_seeds - 1) // block_seeds
    threads = max(1, min(threads, num_blocks))
    max_ban = 0
    for j in range(n):
        max_ban = max(max_ban, ban_ptr[j + 1] - ban_ptr[j])
    visits = num_walks * walk_length + max_ban + 1
    bits = 4
    while (1 << bits) < 2 * visits:  # load factor <= 1/2: short probes
        bits += 1
    shift = np.uint64(64 - bits)
    status = np.zeros(threads, np.int64)
    for t in numba.prange(threads):
        width = block_seeds * num_walks
        cur = np.empty(width, np.int64)
        origin = np.empty(width, np.int64)
        pos = np.empty(width, np.int64)
        ctx = np.empty(width, np.int64)
        state = np.empty(width, np.uint64)
        trace = np.empty((width, walk_length), np.int64)
        trace_ctx = np.empty((width, walk_length if out_ctx.shape[1] > 0 else 0), np.int64)
        table = np.zeros((4, 1 << bits), np.int64)
        table[0, :] = -1
        used = np.empty(visits + 1, np.int64)
        h_item = np.empty(top_k, np.int64)
        h_cnt = np.empty(top_k, np.int64)
        for b in range(t, num_blocks, threads):
            lo = b * block_seeds
            hi = min(lo + block_seeds, n)
            for j in range(lo, hi):
                for w in range(num_walks):
                    i = (j - lo) * num_walks + w
                    origin[i] = seeds[j]
                    cur[i] = seeds[j]
                    state[i] = walk_state(seed, seeds[j], w)
            if walk_block(item_ptr, item_ctx, ctx_ptr, ctx_item, type_cum, origin,
                          (hi - lo) * num_walks, walk_length, restart_prob, cur, pos, ctx,
                          state, trace, trace_ctx):
                status[t] = BAD_ID
            for j in range(lo, hi):
                _count_seed(trace, trace_ctx, (j - lo) * num_walks, num_walks, seeds[j],
                            ban_items[ban_ptr[j]:ban_ptr[j + 1]], table, shift, used,
                            h_item, h_cnt, top_k, out_item[j], out_cnt[j], out_ctx[j])
    return status.max()
