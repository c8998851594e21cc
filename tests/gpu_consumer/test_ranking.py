"""One ranking metric: what early stopping watches is what `sagewalk evaluate` reports."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gpu_consumer import ranking
from gpu_consumer.validate import ValidationSet, rank_positives
from serving.evaluate import pair_metrics


def test_ties_count_half_and_excluded_candidates_not_at_all():
    pool = np.array([[0.9, 0.5, 0.5, 0.5, 0.1],
                     [0.5, 0.5, 0.5, 0.5, 0.5]], np.float32)
    excluded = np.zeros_like(pool, bool)
    excluded[0, 0] = True                       # e.g. the query itself
    ranks = ranking.positive_ranks(np.array([0.5, 0.5]), pool, excluded)
    assert ranks.tolist() == [1 + 0 + 3 // 2, 1 + 0 + 5 // 2]
    assert ranking.hit_rate(ranks, 2) == 0.5
    assert ranking.scaled_mrr(np.array([1, 150, 250]), 100) == pytest.approx(
        (1 + 1 / 2 + 1 / 3) / 3)
    assert ranking.scaled_mrr(np.array([4]), 1) == 0.25


def test_validation_and_evaluation_rank_the_same_way():
    rng = np.random.default_rng(3)
    n_items, d = 40, 4
    # Rounded vectors, so many scores tie exactly: the two used to differ there.
    z = torch.from_numpy(np.round(rng.normal(size=(n_items, d)), 0).astype(np.float32))
    queries = rng.choice(n_items, 12, replace=False).astype(np.int64)
    positives = (queries + 1) % n_items
    vset = ValidationSet(queries, positives, np.arange(n_items, dtype=np.int64))
    for k in (1, 5, 10):
        validation = rank_positives(z[queries], z[positives], z, vset, k=k)
        evaluation = pair_metrics(lambda q: (z[q] @ z.T).numpy(), queries, positives, k=k,
                                  num_items=n_items)
        assert validation.hit_rate == evaluation.hit_rate
        assert validation.mrr == evaluation.mrr
