"""The ranking metric of held-out pairs, one definition for training and serving.

The positive's rank among a candidate pool is 1 + the candidates scored
strictly above it + half of those scored equal (so a constant scorer gets the
middle rank, not the best); hit-rate@K is P(rank <= K) and the scaled MRR is
the mean of 1 / ceil(rank / scale) (PinSage scales by 100, MultiSage by 10).
Validation inside training (gpu_consumer/validate.py, what early stopping
watches) and `sagewalk evaluate` (serving/evaluate.py) both rank with it.
"""

from __future__ import annotations

import numpy as np

MRR_SCALE = 100.0   # PinSage's scale: what validation and `sagewalk evaluate` report


def positive_ranks(positive: np.ndarray, pool_scores: np.ndarray,
                   excluded: np.ndarray) -> np.ndarray:
    """1-based rank of each row's positive score [n] among its pool's scores
    [n, c]; candidates where `excluded` [n, c] is True (the query, the positive
    itself) neither beat nor tie it."""
    positive = np.asarray(positive, np.float32)[:, None]
    pool_scores = np.asarray(pool_scores, np.float32)
    better = ((pool_scores > positive) & ~excluded).sum(axis=1)
    ties = ((pool_scores == positive) & ~excluded).sum(axis=1)
    return 1 + better + ties // 2


def hit_rate(ranks: np.ndarray, k: int) -> float:
    return float(np.mean(np.asarray(ranks) <= k)) if len(ranks) else 0.0


def scaled_reciprocal(ranks: np.ndarray, scale: float = MRR_SCALE) -> np.ndarray:
    """Each rank's 1 / ceil(rank / scale): the term scaled MRR averages."""
    return 1.0 / np.ceil(np.asarray(ranks, np.float64) / scale)


def scaled_mrr(ranks: np.ndarray, scale: float = MRR_SCALE) -> float:
    return float(np.mean(scaled_reciprocal(ranks, scale))) if len(ranks) else 0.0
