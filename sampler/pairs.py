"""Training pairs (query, positive): where they come from and how an epoch
walks through them.

The pairs are a fixed, deterministic set (from a pair file, or co-occurrence
drawn once with the base seed); a validation share is held out; each epoch is
a seeded permutation of the training pairs cut into consecutive batches, so
every epoch covers every training pair exactly once whichever producer builds
which batch.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from common.errors import SagewalkError
from sampler.graph import WalkGraph
from sampler.rng import advance, below, seed64, unit, walk_state
from sampler.walk_kernels import step_slot


class PairFileError(SagewalkError):
    """The pair file is missing or malformed, or names unknown items."""


@dataclass(frozen=True)
class TrainingPairs:
    queries: np.ndarray          # [n] training pairs: int32 ids (int64 past 2^31 items)
    positives: np.ndarray
    val_queries: np.ndarray      # [m] held out
    val_positives: np.ndarray

    def __len__(self) -> int:
        return int(self.queries.shape[0])

    def num_batches(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)

    def batch(self, epoch: int, index: int, batch_size: int, seed: int
              ) -> tuple[np.ndarray, np.ndarray]:
        """Pairs of batch `index` of `epoch` (the last batch may be short)."""
        total = self.num_batches(batch_size)
        if not 0 <= index < total:
            raise ValueError(f"batch {index} of epoch {epoch} does not exist: an epoch has "
                             f"{total} batches of {batch_size} pairs ({len(self)} pairs)")
        order = EpochOrder(len(self), seed, epoch).take(index * batch_size,
                                                        (index + 1) * batch_size)
        return self.take(order)

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The training pairs at `rows`, as int64 (what a batch carries)."""
        return self.queries[rows].astype(np.int64), self.positives[rows].astype(np.int64)


class EpochOrder:
    """The order of the n training pairs in one epoch: a Fisher-Yates shuffle
    seeded by (seed, epoch), carried out only as far as the batches asked for
    reach.  Its first k entries are a uniform random k of the pairs in random
    order, the same in every process whatever order the batches are asked in,
    at the cost of k swaps: an epoch of a few hundred batches over tens of
    millions of pairs (sagewalk train draws many positives per item) does
    not pay for shuffling them all."""

    def __init__(self, n: int, seed: int, epoch: int):
        # int32 while it fits: at 10M items x 2 pairs an int64 order is 160 MB.
        self.order = np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)
        self.shuffled = 0
        self._state = np.uint64(walk_state(seed64(seed), np.uint64(epoch), np.uint64(0x5A17)))

    def take(self, start: int, stop: int) -> np.ndarray:
        """Entries [start, stop) of the order (stop clipped to n)."""
        stop = min(int(stop), self.order.shape[0])
        if stop > self.shuffled:
            self._state = np.uint64(_shuffle_prefix(self.order, self.shuffled, stop, self._state))
            self.shuffled = stop
        return self.order[start:stop]


@numba.njit(nogil=True, cache=True)
def _shuffle_prefix(order, start, stop, s):
    """Fisher-Yates steps start..stop-1 over `order`; returns the state."""
    n = order.shape[0]
    for i in range(start, stop):
        s = advance(s)
        j = i + below(s, n - i)
        order[i], order[j] = order[j], order[i]
    return s


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The whole order of the n training pairs for `epoch` (EpochOrder's)."""
    return EpochOrder(n, seed, epoch).take(0, n)


def split(queries, positives, validation_fraction: float, seed: int) -> TrainingPairs:
    """Hold out about `validation_fraction` of the pairs, by item pair: an
    unordered pair {a, b} is held out or not as a seeded hash of (a, b)
    says, so every copy of it, either way round, lands on the same side.
    Drawn positives repeat (many per item from few co-occurring items), and
    a held-out pair that is also trained on measures memory, not
    generalisation.  The held-out side keeps one copy of each pair.  Ids are
    kept as int32 while they fit (the pairs live in every producer and the
    trainer for the whole run)."""
    q, p = np.asarray(queries), np.asarray(positives)
    top = max(int(q.max(initial=0)), int(p.max(initial=0)))
    ids = np.int32 if top < 2**31 else np.int64
    keep = q != p
    if keep.all():
        q, p = q.astype(ids), p.astype(ids)
    else:
        q, p = q[keep].astype(ids), p[keep].astype(ids)
    del keep
    held = np.empty(q.shape[0], np.bool_)
    if q.shape[0]:
        # salted: the co-occurrence draws start from walk_state(seed, item, r)
        _held_out(q, p, seed64(seed) ^ HELD_OUT_SALT, float(validation_fraction), held)
    vq, vp = q[held], p[held]
    lo, hi = np.minimum(vq, vp).astype(np.int64), np.maximum(vq, vp).astype(np.int64)
    _, first = np.unique(lo * (top + 1) + hi if top < 2**31 else np.stack([lo, hi], 1),
                         axis=None if top < 2**31 else 0, return_index=True)
    first.sort()
    np.logical_not(held, out=held)
    return TrainingPairs(q[held], p[held], vq[first], vp[first])


HELD_OUT_SALT = np.uint64(0xBA1D_5EED_0F0F_A11E)


@numba.njit(nogil=True, cache=True)
def _held_out(q, p, seed, fraction, out):
    """out[i]: whether the unordered pair {q[i], p[i]} is held out."""
    for i in range(q.shape[0]):
        a, b = np.uint64(q[i]), np.uint64(p[i])
        lo, hi = (a, b) if a < b else (b, a)
        out[i] = unit(walk_state(seed, lo, hi)) < fraction


def cooccurrence_pairs(graph: WalkGraph, pairs_per_item: int, seed: int
                       ) -> tuple[np.ndarray, np.ndarray]:
    """For every item with a context, `pairs_per_item` positives: an item that
    shares a context with it (one item->context->item step that does not
    return to the item itself; up to 16 tries, then that draw is dropped)."""
    q = np.empty(graph.num_items * pairs_per_item, np.int64)
    p = np.empty_like(q)
    n = _cooccurrence_kernel(graph.item_ptr, graph.item_ctx, graph.ctx_ptr, graph.ctx_item,
                             graph.type_cum, graph.num_items, pairs_per_item,
                             seed64(seed), q, p)
    if n < 0:
        raise graph.corrupt_error("drawing co-occurrence positives")
    return q[:n], p[:n]


NO_CONTEXT = -1   # _hop: the item has no context to step through
BAD_ID = -2       # _hop: a stored id or offset lies outside the graph


@numba.njit(nogil=True, cache=True, inline="always")
def _hop(item_ptr, item_ctx, ctx_ptr, ctx_item, type_cum, num_items, cur, s):
    """One item->context->item step from `cur`: (next item, state), or
    NO_CONTEXT / BAD_ID as the item.  An empty context leaves the walk at
    `cur`.  Ids and offsets are checked before they index (these kernels are
    not the hot loop)."""
    a, d, s = step_slot(item_ptr, type_cum, cur, advance(s))
    if d == 0:
        return NO_CONTEXT, s
    if a < 0 or a + d > item_ctx.shape[0]:
        return BAD_ID, s
    g = np.int64(item_ctx[a + below(s, d)])
    if g < 0 or g >= ctx_ptr.shape[0] - 1:
        return BAD_ID, s
    s = advance(s)
    a2 = ctx_ptr[g]
    d2 = ctx_ptr[g + 1] - a2
    if d2 <= 0:
        return cur, s
    if a2 < 0 or a2 + d2 > ctx_item.shape[0]:
        return BAD_ID, s
    nxt = np.int64(ctx_item[a2 + below(s, d2)])
    if nxt < 0 or nxt >= num_items:
        return BAD_ID, s
    return nxt, s


@numba.njit(nogil=True, cache=True)
def _cooccurrence_kernel(item_ptr, item_ctx, ctx_ptr, ctx_item, type_cum, num_items,
                         per_item, seed, out_q, out_p):
    """Returns the pair count, or -1 if a stored id or offset was out of range."""
    n = 0
    for item in range(num_items):
        for r in range(per_item):
            s = walk_state(seed, item, r)
            for _ in range(16):
                other, s = _hop(item_ptr, item_ctx, ctx_ptr, ctx_item, type_cum, num_items,
                                item, s)
                if other == BAD_ID:
                    return -1
                if other == NO_CONTEXT:
                    break
                if other != item:
                    out_q[n] = item
                    out_p[n] = other
                    n += 1
                    break
    return n


def walk_pairs(graph: WalkGraph, pairs_per_item: int, restart_prob: float, max_steps: int,
               seed: int) -> tuple[np.ndarray, np.ndarray]:
    """For every item with a context, `pairs_per_item` positives drawn from its
    personalised PageRank: a walk of item->context->item steps that stops after
    each step with probability `restart_prob` (at most `max_steps` steps), its
    last item the positive (dropped when it is the item itself).  The endpoint
    of such a walk is distributed as PPR with teleport `restart_prob`, so the
    pairs sample the multi-hop "visited together" signal that the importance
    neighbourhoods and the PPR baseline rank by, not only one-hop co-occurrence."""
    q = np.empty(graph.num_items * pairs_per_item, np.int64)
    p = np.empty_like(q)
    n = _walk_pair_kernel(graph.item_ptr, graph.item_ctx, graph.ctx_ptr, graph.ctx_item,
                          graph.type_cum, graph.num_items, pairs_per_item, float(restart_prob),
                          int(max_steps), seed64(seed), q, p)
    if n < 0:
        raise graph.corrupt_error("drawing walk positives")
    return q[:n], p[:n]


@numba.njit(nogil=True, cache=True)
def _walk_pair_kernel(item_ptr, item_ctx, ctx_ptr, ctx_item, type_cum, num_items,
                      per_item, restart_prob, max_steps, seed, out_q, out_p):
    """Returns the pair count, or -1 if a stored id or offset was out of range."""
    n = 0
    for item in range(num_items):
        for r in range(per_item):
            s = walk_state(seed, item, r + 0x3A11)
            cur = np.int64(item)
            for _ in range(max_steps):
                nxt, s = _hop(item_ptr, item_ctx, ctx_ptr, ctx_item, type_cum, num_items,
                              cur, s)
                if nxt == BAD_ID:
                    return -1
                if nxt == NO_CONTEXT:
                    break
                cur = nxt
                s = advance(s)
                if unit(s) < restart_prob:
                    break
            if cur != item:
                out_q[n] = item
                out_p[n] = cur
                n += 1
    return n


def read_pair_file(path: str | Path, idmap) -> tuple[np.ndarray, np.ndarray]:
    """Two columns of external item ids per line (tab, comma or whitespace
    separated); blank lines and lines starting with '#' are skipped."""
    path = Path(path)
    queries, positives = [], []
    try:
        with path.open(newline="") as f:
            for lineno, line in enumerate(f, 1):
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                cols = _columns(text)
                if len(cols) != 2:
                    raise PairFileError(f"{path}:{lineno}: expected 2 columns (query id, "
                                        f"positive id), got {len(cols)}: {text[:80]!r}")
                queries.append(cols[0])
                positives.append(cols[1])
    except OSError as err:
        raise PairFileError(f"sampler.positives: cannot read pair file {path}: {err}; "
                            "give a readable file or 'cooccurrence'") from err
    if not queries:
        raise PairFileError(f"{path}: no pairs found; expected lines 'query_id<TAB>positive_id'")
    try:
        return idmap.to_dense(queries), idmap.to_dense(positives)
    except SagewalkError as err:
        raise PairFileError(f"{path}: {err}") from err


def _columns(text: str) -> list[str]:
    if "\t" in text:
        return [c.strip() for c in text.split("\t")]
    if "," in text:
        return [c.strip() for c in next(csv.reader([text]))]
    return text.split()
