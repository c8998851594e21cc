"""The computation graph of a K-layer model for a set of target items.

node_sets[K] are the targets; node_sets[k] is node_sets[k+1] followed by the
neighbours of node_sets[k+1] not already in it (first-appearance order), so
every set is a prefix of the one below and each node's neighbourhood is
sampled once per batch.  blocks[k] holds, for each node of node_sets[k+1],
the positions of its neighbours in node_sets[k] and their weights.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from sampler.records import Block, ComputationGraph, Neighbourhoods

# sample(nodes, exclude_ptr, exclude_items) -> Neighbourhoods for those nodes
SampleFn = Callable[[np.ndarray, np.ndarray, np.ndarray], Neighbourhoods]


def build(targets: np.ndarray, num_layers: int, sample: SampleFn,
          exclude: tuple[np.ndarray, np.ndarray] | None = None,
          context_types: int = 0) -> ComputationGraph:
    """`targets` must be distinct.  exclude: per-target banned neighbours as
    CSR (ptr [len(targets)+1], items) - applied wherever a target is a
    destination.  context_types > 0: fill the MultiSage context arrays."""
    targets = np.asarray(targets, np.int64)
    if np.unique(targets).shape[0] != targets.shape[0]:
        raise ValueError("targets must be distinct item ids")
    ptr, items = exclude if exclude is not None else (np.zeros(targets.shape[0] + 1, np.int64),
                                                      np.empty(0, np.int64))
    sets = [targets]
    rows: list[Neighbourhoods] = []
    for layer in range(num_layers):
        dst = sets[-1]
        fresh = dst[sum(r.neighbors.shape[0] for r in rows):]
        if layer == 0:  # only targets carry bans, and they are sampled first
            rows.append(sample(fresh, ptr, items))
        else:
            rows.append(sample(fresh, np.zeros(fresh.shape[0] + 1, np.int64), items[:0]))
        sets.append(_append_new(dst, np.concatenate([r.neighbors for r in rows])))
    sets.reverse()  # sets[k] now feeds layer k; sets[-1] are the targets
    all_rows = _concat(rows)
    blocks, ctx_t, ctx_i = _blocks(sets, all_rows, num_layers, context_types > 0)
    return ComputationGraph(tuple(sets), tuple(blocks), ctx_t, ctx_i)


def _append_new(dst: np.ndarray, nbrs: np.ndarray) -> np.ndarray:
    flat = nbrs[nbrs >= 0]
    flat = flat[~np.isin(flat, dst)]
    uniq, first = np.unique(flat, return_index=True)
    return np.concatenate([dst, uniq[np.argsort(first, kind="stable")]])


def _positions(node_set: np.ndarray, ids: np.ndarray) -> np.ndarray:
    sorter = np.argsort(node_set, kind="stable")
    found = np.searchsorted(node_set, np.maximum(ids, 0), sorter=sorter)
    return sorter[np.minimum(found, node_set.shape[0] - 1)]


def _blocks(sets, rows: Neighbourhoods, num_layers: int, contextual: bool):
    ctx_key = None
    if contextual:
        valid = rows.neighbors >= 0
        pairs = np.stack([rows.context_type[valid].astype(np.int64), rows.context[valid]], 1)
        uniq, first, inverse = np.unique(pairs, axis=0, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.shape[0])
        ctx_key = np.full(rows.neighbors.shape, -1, np.int64)
        ctx_key[valid] = rank[inverse.reshape(-1)]
        ctx_types = uniq[order, 0].astype(np.int16)
        ctx_ids = uniq[order, 1].astype(np.int64)
    blocks = []
    for k in range(num_layers):
        n_dst = sets[k + 1].shape[0]
        nbrs = rows.neighbors[:n_dst]
        pad = nbrs < 0
        index = np.where(pad, 0, _positions(sets[k], nbrs)).astype(np.int32)
        weight = np.where(pad, 0.0, rows.weights[:n_dst]).astype(np.float32)
        cidx = ctx_key[:n_dst].astype(np.int32) if contextual else None
        blocks.append(Block(n_dst, index, weight, cidx))
    if not contextual:
        return blocks, None, None
    return blocks, ctx_types, ctx_ids


def _concat(rows: list[Neighbourhoods]) -> Neighbourhoods:
    def cat(name):
        parts = [getattr(r, name) for r in rows]
        return None if parts[0] is None else np.concatenate(parts)
    return Neighbourhoods(cat("neighbors"), cat("weights"), cat("context_type"), cat("context"))

