"""Evaluation protocols: DGL's PinSAGE HITS@K and the papers' pair protocol.

DGL protocol (MovieLens-1M, leave-last-out by time): each user is queried with
their latest train item; every catalogue item is scored; the user's train items
are excluded; a hit is the held-out (validation or test) item in the top K;
HITS@K is the mean over users.

Pair protocol (PinSage, MultiSage): for each held-out (query, positive) pair,
the positive's rank among a candidate pool by the query's scores; hit-rate@K is
the fraction ranked within K; scaled MRR is the mean of 1 / ceil(rank / scale)
(PinSage scales by 100, MultiSage by 10).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from common.errors import SagewalkError
from gpu_consumer import ranking
from serving.splits import Interactions, latest_items

Scorer = Callable[[np.ndarray], np.ndarray]


class EvaluationError(SagewalkError):
    """Evaluation inputs do not fit together."""


@dataclass(frozen=True)
class HeldOut:
    """A leave-last-out dataset in the catalogue's dense item ids."""
    item_ids: tuple[str, ...]     # catalogue order: row i of every score matrix
    num_users: int
    train: Interactions
    valid: Interactions
    test: Interactions


def read_interactions(path: Path, item_index: dict[str, int], user_index: dict[str, int]
                      ) -> Interactions:
    """A split file (item, user, timestamp with a header) in dense ids; users are
    numbered in order of first appearance across files (user_index grows)."""
    items, users, stamps = [], [], []
    with open(path, encoding="utf-8") as f:
        next(f, None)
        for lineno, line in enumerate(f, start=2):
            cols = line.rstrip("\n").split("\t")
            if len(cols) != 3:
                raise EvaluationError(f"{path}:{lineno}: expected 3 tab-separated columns "
                                      f"(item, user, timestamp), got {len(cols)}")
            if cols[0] not in item_index:
                raise EvaluationError(
                    f"{path}:{lineno}: item {cols[0]!r} is not in the catalogue "
                    "(embeddings / store ids); build them from the same dataset")
            items.append(item_index[cols[0]])
            users.append(user_index.setdefault(cols[1], len(user_index)))
            stamps.append(int(cols[2]))
    return Interactions(np.asarray(users, np.int64), np.asarray(items, np.int64),
                        np.asarray(stamps, np.int64))


def load_held_out(dataset: Path, item_ids: list[str] | None = None) -> HeldOut:
    """Read train/valid/test of a converted dataset; the catalogue is `item_ids`
    (e.g. the rows of exported embeddings) or else every item in items.tsv."""
    dataset = Path(dataset)
    if item_ids is None:
        with open(dataset / "items.tsv", encoding="utf-8") as f:
            next(f, None)
            item_ids = [line.split("\t", 1)[0] for line in f if line.strip()]
    index = {item: i for i, item in enumerate(item_ids)}
    users: dict[str, int] = {}
    parts = {p: read_interactions(dataset / f"{p}.tsv", index, users)
             for p in ("train", "valid", "test")}
    return HeldOut(tuple(item_ids), len(users), **parts)


def _csr_by_user(data: Interactions, num_users: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(data.users, kind="stable")
    indptr = np.zeros(num_users + 1, np.int64)
    np.cumsum(np.bincount(data.users, minlength=num_users), out=indptr[1:])
    return indptr, data.items[order]


def hits_at_k(scorer: Scorer, held: HeldOut, part: str = "valid", k: int = 10,
              batch: int = 512) -> float:
    """DGL's HITS@K on `part` ('valid' or 'test'): mean over users with a held-out
    item of whether it is in the top K of their latest train item's scores."""
    target = getattr(held, part)
    latest = latest_items(held.train, held.num_users)
    users = target.users[latest[target.users] >= 0]
    wanted = np.full(held.num_users, -1, np.int64)
    wanted[target.users] = target.items
    seen_ptr, seen = _csr_by_user(held.train, held.num_users)
    hits = 0
    for start in range(0, len(users), batch):
        chunk = users[start:start + batch]
        scores = np.array(scorer(latest[chunk]), dtype=np.float32, copy=True)
        counts = seen_ptr[chunk + 1] - seen_ptr[chunk]
        rows = np.repeat(np.arange(len(chunk)), counts)
        cols = np.concatenate([seen[seen_ptr[u]:seen_ptr[u + 1]] for u in chunk])
        scores[rows, cols] = -np.inf
        top = top_k(scores, k)
        hits += int((top == wanted[chunk][:, None]).any(axis=1).sum())
    return hits / max(len(users), 1)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best per row, best first (ties: lower index first)."""
    # A stable full sort: argpartition would break ties at the K-th place arbitrarily,
    # and tie-breaking moves count-based baselines by a few tenths of a point.
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


@dataclass(frozen=True)
class PairResult:
    pairs: int
    hit_rate: float
    mrr: float
    k: int
    scale: float
    pool: int


def pair_metrics(scorer: Scorer, queries: np.ndarray, positives: np.ndarray, *,
                 k: int = 10, scale: float = 100.0, pool: int | None = None,
                 num_items: int, seed: int = 0, batch: int = 512) -> PairResult:
    """Rank each positive among a candidate pool (all items, or `pool` random items
    drawn once with `seed`, plus the positive); the query itself never counts."""
    queries = np.asarray(queries, np.int64)
    positives = np.asarray(positives, np.int64)
    if len(queries) != len(positives) or len(queries) == 0:
        raise EvaluationError(f"need equally many queries and positives (>0), got "
                              f"{len(queries)} and {len(positives)}")
    candidates = None
    if pool is not None and pool < num_items:
        candidates = np.random.default_rng(seed).choice(num_items, size=pool, replace=False)
    ranks = np.empty(len(queries), np.int64)
    for start in range(0, len(queries), batch):
        q, p = queries[start:start + batch], positives[start:start + batch]
        ranks[start:start + batch] = _ranks(scorer(q), q, p, candidates)
    return PairResult(len(queries), ranking.hit_rate(ranks, k), ranking.scaled_mrr(ranks, scale),
                      k, scale, num_items if candidates is None else len(candidates))


def _ranks(scores: np.ndarray, q: np.ndarray, p: np.ndarray,
           candidates: np.ndarray | None) -> np.ndarray:
    rows = np.arange(len(q))
    positive = np.asarray(scores[rows, p], np.float32)
    if candidates is not None:
        pool_scores = np.asarray(scores[:, candidates], np.float32)
        is_self = (candidates[None, :] == q[:, None]) | (candidates[None, :] == p[:, None])
    else:
        pool_scores = np.asarray(scores, np.float32)
        is_self = np.zeros(pool_scores.shape, bool)
        is_self[rows, q] = True
        is_self[rows, p] = True
    return ranking.positive_ranks(positive, pool_scores, is_self)


def pairs_from_split(held: HeldOut, part: str) -> tuple[np.ndarray, np.ndarray]:
    """(latest train item, held-out item) per user: the pair protocol on a split."""
    target = getattr(held, part)
    latest = latest_items(held.train, held.num_users)
    keep = latest[target.users] >= 0
    return latest[target.users[keep]], target.items[keep]


@dataclass(frozen=True)
class RankMetrics:
    """Ranking figures over held-out pairs, each with its standard error.

    hit_rate[k] = P(rank <= k), se sqrt(p(1-p)/n); mrr = mean 1/ceil(rank/scale),
    se = sample std / sqrt(n); median rank with, as its se, half the distance between
    the sorted ranks at 0-based positions floor(n/2 - sqrt(n)/2) and ceil(n/2 +
    sqrt(n)/2) (about a binomial 68% interval for the median)."""
    pairs: int
    candidates: int
    scale: float
    hit_rate: dict[int, float]
    hit_rate_se: dict[int, float]
    mrr: float
    mrr_se: float
    median_rank: float
    median_rank_se: float

    def as_dict(self) -> dict:
        out = {"pairs": self.pairs, "candidates": self.candidates, "scale": self.scale}
        for k in sorted(self.hit_rate):
            out[f"hr@{k}"] = round(self.hit_rate[k], 5)
            out[f"hr@{k}_se"] = round(self.hit_rate_se[k], 5)
        out.update(mrr=round(self.mrr, 5), mrr_se=round(self.mrr_se, 5),
                   median_rank=self.median_rank, median_rank_se=round(self.median_rank_se, 2))
        return out


def rank_metrics(ranks: np.ndarray, *, ks: tuple[int, ...] = (10, 50), scale: float = 100.0,
                 candidates: int) -> RankMetrics:
    """RankMetrics of 1-based ranks (one per pair)."""
    ranks = np.asarray(ranks, np.float64)
    n = len(ranks)
    if n == 0:
        raise EvaluationError("no ranks to summarise (no held-out pairs)")
    hits = {k: float(np.mean(ranks <= k)) for k in ks}
    recip = ranking.scaled_reciprocal(ranks, scale)
    mrr_se = float(np.std(recip, ddof=1) / np.sqrt(n)) if n > 1 else 0.0
    ordered = np.sort(ranks)
    lo = int(np.clip(np.floor(n / 2 - np.sqrt(n) / 2), 0, n - 1))
    hi = int(np.clip(np.ceil(n / 2 + np.sqrt(n) / 2), 0, n - 1))
    return RankMetrics(n, candidates, scale, hits,
                       {k: float(np.sqrt(p * (1 - p) / n)) for k, p in hits.items()},
                       float(np.mean(recip)), mrr_se, float(np.median(ranks)),
                       float((ordered[hi] - ordered[lo]) / 2))


@dataclass(frozen=True)
class PairedDifference:
    """A's figures minus B's on the same held-out pairs, each with the standard
    error of a paired difference: the sample std of the per-pair differences
    (hit_a - hit_b, or of the scaled reciprocal ranks) over sqrt(n).  Two
    methods ranked on one set of pairs fail and succeed on many of the same
    pairs, so this is the SE that says whether A beats B on such pairs; the
    two RankMetrics SEs combined (sqrt(se_a^2 + se_b^2)) treat the runs as if
    scored on independent pairs and overstate it."""
    pairs: int
    hit_rate: dict[int, float]
    hit_rate_se: dict[int, float]
    mrr: float
    mrr_se: float

    def as_dict(self) -> dict:
        out = {"pairs": self.pairs}
        for k in sorted(self.hit_rate):
            out[f"hr@{k}_diff"] = round(self.hit_rate[k], 5)
            out[f"hr@{k}_diff_se"] = round(self.hit_rate_se[k], 5)
        out.update(mrr_diff=round(self.mrr, 5), mrr_diff_se=round(self.mrr_se, 5))
        return out


def paired_difference(ranks_a: np.ndarray, ranks_b: np.ndarray, *,
                      ks: tuple[int, ...] = (10, 50), scale: float = 100.0) -> PairedDifference:
    """A minus B (1-based ranks of the same pairs, in the same order).

    Either one rank per pair ([pairs]) or one row per training run
    ([runs, pairs], run i of A against run i of B, e.g. the same seed): then
    each pair's difference is its mean over the runs, so the SE is that of
    the runs' mean over these pairs (training noise averaged, pair sampling
    not, as it is shared)."""
    a = np.asarray(ranks_a, np.float64)
    b = np.asarray(ranks_b, np.float64)
    if a.shape != b.shape or a.ndim not in (1, 2) or 0 in a.shape[:-1]:
        raise EvaluationError(f"paired ranks must be two equally long lists (one rank per "
                              f"held-out pair, same order), or two equal [runs, pairs] "
                              f"arrays, got shapes {a.shape} and {b.shape}")
    n = a.shape[-1]
    if n < 2:
        raise EvaluationError(f"a paired difference needs two pairs or more, got {n}")

    def mean_se(d: np.ndarray) -> tuple[float, float]:
        d = d.reshape(-1, n).mean(axis=0)        # per pair, over the runs
        return float(d.mean()), float(d.std(ddof=1) / np.sqrt(n))

    hits = {k: mean_se((a <= k).astype(np.float64) - (b <= k)) for k in ks}
    mrr = mean_se(ranking.scaled_reciprocal(a, scale) - ranking.scaled_reciprocal(b, scale))
    return PairedDifference(n, {k: v[0] for k, v in hits.items()},
                            {k: v[1] for k, v in hits.items()}, *mrr)


def ranks_among_all(scorer: Scorer, queries: np.ndarray, positives: np.ndarray, *,
                    exclude: Scorer | None = None, batch: int = 256) -> np.ndarray:
    """1-based rank of each positive among every item but the query (ties count
    half, as in pair_metrics).  `exclude`: a scorer whose positive entries mark
    candidates to leave out for that query (e.g. raw co-occurrence counts: the
    query's training neighbours); the positive itself is never left out."""
    queries = np.asarray(queries, np.int64)
    positives = np.asarray(positives, np.int64)
    if len(queries) != len(positives):
        raise EvaluationError(f"need equally many queries and positives, got "
                              f"{len(queries)} and {len(positives)}")
    ranks = np.empty(len(queries), np.int64)
    for start in range(0, len(queries), batch):
        q, p = queries[start:start + batch], positives[start:start + batch]
        scores = np.array(scorer(q), dtype=np.float32, copy=True)
        if exclude is not None:
            drop = np.asarray(exclude(q)) > 0
            drop[np.arange(len(q)), p] = False
            # NaN compares false both ways: a left-out candidate neither beats nor ties.
            scores[drop] = np.nan
        ranks[start:start + batch] = _ranks(scores, q, p, None)
    return ranks
