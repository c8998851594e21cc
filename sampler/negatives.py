"""Negatives: easy ones shared by a whole batch, hard ones per query.

Easy negatives are drawn uniformly, or proportionally to degree^0.75 (the
word2vec / PinSage popularity correction), without replacement where the
catalogue allows.  Hard negatives are items ranked lo..hi by personalised
PageRank from the query (visit counts of longer restart walks): related to
the query, but not as related as the positive.  `logq_correction` is what a
sampled softmax subtracts so that drawing them does not bias it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sampler.graph import WalkGraph
from sampler.neighbourhoods import ranked_visits
from sampler.rng import seed64


def degree_weights(degrees: np.ndarray) -> np.ndarray:
    """float64: the 'degree' easy negatives' unnormalised proposal, degree^0.75."""
    return np.power(np.asarray(degrees, np.float64), 0.75)


def easy_negatives(num_items: int, count: int, rng: np.random.Generator,
                   distribution: str = "uniform", degrees: np.ndarray | None = None
                   ) -> np.ndarray:
    """int64 [min(count, num_items)] distinct item ids."""
    count = min(count, num_items)
    if count == 0:
        return np.empty(0, np.int64)
    if distribution == "uniform":
        return rng.choice(num_items, size=count, replace=False).astype(np.int64)
    if distribution == "degree":
        if degrees is None:
            raise ValueError("distribution='degree' needs the item degrees")
        w = degree_weights(degrees)
        if not w.sum() > 0:
            return rng.choice(num_items, size=count, replace=False).astype(np.int64)
        nonzero = int(np.count_nonzero(w))
        if count > nonzero:  # fill with zero-degree items once every weighted one is in
            head = np.flatnonzero(w)
            rest = rng.choice(np.flatnonzero(w == 0), size=count - nonzero, replace=False)
            return np.concatenate([rng.permutation(head), rest]).astype(np.int64)
        return rng.choice(num_items, size=count, replace=False, p=w / w.sum()).astype(np.int64)
    raise ValueError(f"sampler.negative_distribution: expected 'uniform' or 'degree', "
                     f"got {distribution!r}")


def rank_window(num_items: int, rank: tuple[int, int], full_catalogue: int) -> tuple[int, int]:
    """The hard-negative rank range for a catalogue of `num_items`: as configured
    from `full_catalogue` items up, scaled down in proportion below that (so a
    1,000-item catalogue with [2000, 5000] @ 50,000 ranks 40..100)."""
    lo, hi = rank
    if num_items >= full_catalogue:
        return lo, hi
    scale = num_items / full_catalogue
    lo_s = int(lo * scale)
    return lo_s, max(lo_s + 1, int(round(hi * scale)))


def reached_window(lo: int, hi: int, reached: int) -> tuple[int, int]:
    """The ranks [a, z) hard negatives are drawn from for a query whose walks
    reached `reached` distinct items: the window [lo, hi) itself when they
    reached its end, else shrunk in proportion to what was reached."""
    return (lo, hi) if reached >= hi else (lo * reached // hi, reached)


@dataclass(frozen=True)
class Windows:
    """Each query's hard-negative window: ranks [start, stop) of its row of
    `items` (visit-count order).  stop <= start: the walks reached nothing,
    and the query's hard negatives are uniform items instead."""
    items: np.ndarray     # int64 [B, hi]
    start: np.ndarray     # int64 [B]
    stop: np.ndarray      # int64 [B]

    def inside(self) -> np.ndarray:
        """bool [B, hi]: which ranks of each row lie in its window."""
        ranks = np.arange(self.items.shape[1])
        return (ranks >= self.start[:, None]) & (ranks < self.stop[:, None])


def hard_negative_windows(graph: WalkGraph, queries: np.ndarray, positives: np.ndarray, *,
                          rank: tuple[int, int], full_catalogue: int, num_walks: int,
                          walk_length: int, restart_prob: float, seed: int) -> Windows:
    """The windows `hard_negatives` draws from (never the query or its
    positive).  Where the walks reach fewer items than the window needs, it
    shrinks in proportion to what was reached."""
    queries = np.asarray(queries, np.int64)
    lo, hi = rank_window(graph.num_items, rank, full_catalogue)
    ranked = ranked_visits(graph, queries, num_walks=num_walks, walk_length=walk_length,
                           restart_prob=restart_prob, top_k=hi, seed=seed,
                           exclude=[np.array([p]) for p in positives])
    reached = (ranked.counts > 0).sum(axis=1)
    bounds = np.array([reached_window(lo, hi, int(r)) for r in reached], np.int64)
    bounds = bounds.reshape(-1, 2)
    return Windows(ranked.items.astype(np.int64), bounds[:, 0], bounds[:, 1])


def draw_hard_negatives(windows: Windows, queries: np.ndarray, positives: np.ndarray,
                        count: int, num_items: int, seed: int) -> np.ndarray:
    """int64 [B, count]: `count` items per query drawn uniformly (with
    replacement) from its window, or from every item but the query and its
    positive where the window is empty."""
    b = len(queries)
    rng = np.random.default_rng([seed64(seed), 0x4A2D])
    out = np.empty((b, count), np.int64)
    for i in range(b):
        a, z = int(windows.start[i]), int(windows.stop[i])
        if z > a:
            out[i] = windows.items[i, a + rng.integers(0, z - a, count)]
        else:
            out[i] = _uniform_except(num_items, count, (queries[i], positives[i]), rng)
    return out


def hard_negatives(graph: WalkGraph, queries: np.ndarray, positives: np.ndarray, count: int,
                   *, rank: tuple[int, int], full_catalogue: int, num_walks: int,
                   walk_length: int, restart_prob: float, seed: int) -> np.ndarray:
    """int64 [B, count]: for each query, `count` items drawn uniformly from its
    personalised-PageRank ranks in the window (never the query or its positive).
    Where the walks reach fewer items than the window needs, the window shrinks
    in proportion to what was reached; a query that reaches nothing gets
    uniform items instead."""
    queries = np.asarray(queries, np.int64)
    b = queries.shape[0]
    if count == 0 or b == 0:
        return np.empty((b, count), np.int64)
    windows = hard_negative_windows(graph, queries, positives, rank=rank,
                                    full_catalogue=full_catalogue, num_walks=num_walks,
                                    walk_length=walk_length, restart_prob=restart_prob,
                                    seed=seed)
    return draw_hard_negatives(windows, queries, positives, count, graph.num_items, seed)


def easy_rates(num_items: int, count: int, distribution: str = "uniform",
               degrees: np.ndarray | None = None) -> np.ndarray:
    """float64 [num_items]: how many times each item is expected among a
    batch's `count` easy negatives (`easy_negatives`' proposal; the degree
    one as if drawn with replacement, which overstates the most popular
    items' rate a little)."""
    count = min(count, num_items)
    if distribution == "degree" and degrees is not None:
        w = degree_weights(degrees)
        if w.sum() > 0:
            return np.minimum(1.0, count * w / w.sum())
    return np.full(num_items, count / max(1, num_items))


def logq_correction(windows: Windows, hard: np.ndarray, num_items: int, easy: np.ndarray,
                    rates: np.ndarray) -> np.ndarray:
    """float32 [B, len(easy) + h]: what the sampled softmax subtracts from
    each negative's logit, the batch's easy negatives first, then each
    query's hard ones (`hard` [B, h], drawn from `windows`), so that the
    hard negatives leave its objective what the easy negatives alone
    estimate (with uniform ones, the full softmax's up to the positive's
    constant weight).

    A sampled softmax's negatives stand in for the whole catalogue, each in
    proportion to how often the proposal draws it.  Uniform easy negatives
    draw every item alike, so they need no correction; hard negatives draw a
    query's window items h / |W| times more, and uncorrected they weigh
    those items that much more in the partition function: the model learns
    to rank them below where the data puts them.  Subtracting log(1 + hard
    rate / easy rate) from the logit of every window item, hard or easy
    negative alike (the importance-sampled softmax of Bengio & Senecal),
    restores the estimate; what the hard negatives can still add is a
    lower-variance one.  `rates`: each item's expected count among the easy
    negatives (`easy_rates`).  Items outside the window: 0."""
    easy = np.asarray(easy, np.int64)
    hard = np.asarray(hard, np.int64)
    b, h = hard.shape
    n = len(easy)
    out = np.zeros((b, n + h), np.float32)
    if h == 0 or b == 0 or n == 0:
        return out
    rates = np.maximum(np.asarray(rates, np.float64), 1e-12)
    start, stop = windows.start, windows.stop
    empty = stop <= start            # the uniform fallback draws every item alike
    rate = np.where(empty, h / max(1, num_items), h / np.maximum(1, stop - start))   # [B]
    # easy columns inside each row's window: each window item's column among the
    # easy negatives (one lookup table for the batch, not a search per row)
    column = np.full(num_items, -1, np.int64)
    column[easy] = np.arange(n)
    hit = np.where(windows.inside(), column[np.clip(windows.items, 0, num_items - 1)], -1)
    rows, cols = np.nonzero(hit >= 0)
    cols = hit[rows, cols]
    out[rows, cols] = np.log1p(rate[rows] / rates[easy[cols]])
    if empty.any():
        out[empty, :n] = np.log1p(rate[empty, None] / rates[easy][None, :])
    out[:, n:] = np.log1p(rate[:, None] / rates[hard])
    return out


def _uniform_except(num_items: int, count: int, avoid, rng) -> np.ndarray:
    picks = rng.integers(0, num_items, count)
    if num_items > len(avoid):
        for j in range(count):
            while picks[j] in avoid:
                picks[j] = rng.integers(0, num_items)
    return picks
