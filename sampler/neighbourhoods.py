"""PinSage and MultiSage neighbourhoods: the validating wrappers around
`sampler.walk_kernels.neighbourhood_kernel`.

    nb = pinsage_neighbourhoods(graph, seeds, num_walks=10, walk_length=50,
                                restart_prob=0.0, top_k=25, seed=7)
    nb.neighbors[i], nb.weights[i]      # seed i's top-25 items, weights sum to 1

`exclude` bans items from a seed's neighbourhood: a training batch passes
each query's positive (and each positive's query) so the pair's own link
never leaks into the convolution that has to predict it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numba
import numpy as np

from sampler.graph import WalkGraph
from sampler.paging import paged_visits
from sampler.records import Neighbourhoods
from sampler.rng import seed64
from sampler.walk_kernels import BAD_ID, neighbourhood_kernel

# Walks advanced together per thread: enough independent loads to hide memory
# latency, few enough that the traces stay in L2.
_WALKS_PER_BLOCK = 2048


@dataclass(frozen=True)
class VisitRanking:
    """Items ranked by visit count from each seed (best first), -1/0 padded."""

    items: np.ndarray    # int64 [n, k]
    counts: np.ndarray   # int64 [n, k]
    context: np.ndarray  # int64 [n, k] global context ids, or [n, 0]


def ranked_visits(graph: WalkGraph, seeds, *, num_walks: int, walk_length: int,
                  restart_prob: float, top_k: int, seed: int, exclude=None,
                  exclude_csr=None, track_context: bool = False) -> VisitRanking:
    """The kernel call shared by neighbourhoods and hard negatives.

    exclude: None, or a sequence (one per seed) of item-id arrays never ranked
    for that seed; or exclude_csr = (ptr int64 [n+1], items) the same as CSR.
    The seed itself is never ranked.
    """
    seeds = _check_seeds(graph, seeds)
    _check_walk_args(num_walks, walk_length, restart_prob, top_k)
    ban_ptr, ban_items = _bans(graph, seeds, exclude, exclude_csr)
    threads = numba.get_num_threads()
    n = seeds.shape[0]
    out_item = np.empty((n, top_k), np.int64)
    out_cnt = np.empty((n, top_k), np.int64)
    out_ctx = np.empty((n, top_k if track_context else 0), np.int64)
    steps = num_walks * walk_length
    plan = [] if n == 0 else [(graph.paged, n)] if graph.choice is None \
        else graph.choice.plan(n, steps)
    lo = 0
    for paged, count in plan:
        hi = lo + count
        cut = ban_ptr[lo:hi + 1]
        bans = (cut - cut[0], ban_items[cut[0]:cut[-1]])
        if graph.choice is not None:
            graph.choice.advise(graph, paged)
        started = time.perf_counter()
        status = _walk(graph, paged, seeds[lo:hi], bans, num_walks, walk_length, restart_prob,
                       top_k, seed, threads, out_item[lo:hi], out_cnt[lo:hi], out_ctx[lo:hi])
        if status == BAD_ID:
            raise graph.corrupt_error(f"walks from {n} {graph.item_type} seeds")
        if graph.choice is not None:
            graph.choice.record(paged, count * steps, time.perf_counter() - started)
        lo = hi
    return VisitRanking(out_item, out_cnt, out_ctx)


def _walk(graph, paged, seeds, bans, num_walks, walk_length, restart_prob, top_k, seed,
          threads, out_item, out_cnt, out_ctx) -> int:
    """One kernel over `seeds`, writing their rows of the outputs."""
    if paged:   # not in memory: sampler/paging.py, same neighbourhoods
        return paged_visits(graph, seeds, bans[0], bans[1], num_walks, walk_length,
                            float(restart_prob), top_k, seed64(seed), out_item, out_cnt, out_ctx)
    block = max(1, _WALKS_PER_BLOCK // num_walks)
    return neighbourhood_kernel(
        graph.item_ptr, graph.item_ctx, graph.ctx_ptr, graph.ctx_item, graph.type_cum,
        seeds, bans[0], bans[1], num_walks, walk_length, float(restart_prob), top_k,
        seed64(seed), threads, block, out_item, out_cnt, out_ctx)


def pinsage_neighbourhoods(walk_graph: WalkGraph, seeds, *, num_walks: int, walk_length: int,
                           restart_prob: float, top_k: int, seed: int, exclude=None,
                           exclude_csr=None) -> Neighbourhoods:
    """Top-k items by visit count of `num_walks` walks of `walk_length`
    item->context->item steps from each seed; weights are the kept visit
    counts normalised to sum 1 (an unreachable seed gets an all-zero row)."""
    r = ranked_visits(walk_graph, seeds, num_walks=num_walks, walk_length=walk_length,
                      restart_prob=restart_prob, top_k=top_k, seed=seed, exclude=exclude,
                      exclude_csr=exclude_csr)
    return Neighbourhoods(r.items, _normalise(r.counts))


def multisage_neighbourhoods(walk_graph: WalkGraph, seeds, *, num_walks: int,
                             walk_length: int, restart_prob: float = 0.1, top_k: int = 20,
                             seed: int, exclude=None, exclude_csr=None) -> Neighbourhoods:
    """As pinsage_neighbourhoods, plus each (ego, neighbour)'s dominant
    context node: the streaming-majority winner among the contexts the walks
    passed through on arriving at that neighbour (MultiSage Algorithm 2;
    defaults restart 0.1, s = 20 neighbours)."""
    r = ranked_visits(walk_graph, seeds, num_walks=num_walks, walk_length=walk_length,
                      restart_prob=restart_prob, top_k=top_k, seed=seed, exclude=exclude,
                      exclude_csr=exclude_csr, track_context=True)
    ctx_type, ctx_id = walk_graph.context_of(r.context)
    return Neighbourhoods(r.items, _normalise(r.counts), ctx_type, ctx_id)


def _normalise(counts: np.ndarray) -> np.ndarray:
    total = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, total, out=np.zeros(counts.shape, np.float64),
                     where=total > 0).astype(np.float32)


def _check_seeds(graph: WalkGraph, seeds) -> np.ndarray:
    seeds = np.ascontiguousarray(np.asarray(seeds).reshape(-1), dtype=np.int64)
    if seeds.size and (seeds.min() < 0 or seeds.max() >= graph.num_items):
        bad = seeds[(seeds < 0) | (seeds >= graph.num_items)][0]
        raise ValueError(f"seed {bad} is not a dense {graph.item_type} id; expected "
                         f"0..{graph.num_items - 1}")
    return seeds


def _check_walk_args(num_walks, walk_length, restart_prob, top_k) -> None:
    for name, value in (("num_walks", num_walks), ("walk_length", walk_length),
                        ("top_k", top_k)):
        if not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"{name}: must be a positive integer, got {value!r}")
    if num_walks * walk_length >= (1 << 30):
        raise ValueError(f"num_walks * walk_length = {num_walks * walk_length} visits per "
                         "seed overflow the int32 counters; keep it below 2**30")
    if not 0.0 <= restart_prob <= 1.0:
        raise ValueError(f"restart_prob: must be within [0, 1], got {restart_prob!r}")


def _bans(graph: WalkGraph, seeds: np.ndarray, exclude, exclude_csr):
    """Per-seed banned items as CSR (ptr int64 [n+1], items int64)."""
    n = seeds.shape[0]
    if exclude_csr is not None:
        ptr = np.ascontiguousarray(exclude_csr[0], np.int64)
        items = np.ascontiguousarray(exclude_csr[1], np.int64)
        if ptr.shape != (n + 1,) or ptr[0] != 0 or ptr[-1] != items.shape[0] \
                or np.any(np.diff(ptr) < 0):
            raise ValueError(f"exclude_csr: expected ptr of {n + 1} non-decreasing offsets "
                             f"from 0 to len(items) = {items.shape[0]}")
    elif exclude is None:
        return np.zeros(n + 1, np.int64), np.empty(0, np.int64)
    else:
        if len(exclude) != n:
            raise ValueError(f"exclude: expected one entry per seed ({n}), got {len(exclude)}")
        parts = [np.asarray(e, np.int64).reshape(-1) for e in exclude]
        ptr = np.zeros(n + 1, np.int64)
        np.cumsum([p.size for p in parts], out=ptr[1:])
        items = np.concatenate(parts) if parts else np.empty(0, np.int64)
    if items.size and (items.min() < 0 or items.max() >= graph.num_items):
        raise ValueError(f"exclude holds an id outside 0..{graph.num_items - 1}")
    return ptr, items
