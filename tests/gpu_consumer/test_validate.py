import numpy as np
import torch

from gpu_consumer.validate import ValidationSet, rank_positives


def test_with_the_prior_a_candidate_with_a_large_beta_outranks_the_positive():
    # Query 0's positive is item 1 (cosine 1); item 2 is orthogonal but has β = 2.
    v = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 2.0], [0.0, 1.0, 0.0]])
    vset = ValidationSet(np.array([0]), np.array([1]), np.arange(4))
    zq, zp = v[[0]], v[[1]]
    assert rank_positives(zq, zp, v, vset, k=1).hit_rate == 1.0
    assert rank_positives(zq, zp, v, vset, k=1, prior=True).hit_rate == 0.0
    # Without β the rank is as the unit vectors alone give it.
    assert rank_positives(zq[:, :2], zp[:, :2], v[:, :2], vset, k=1).hit_rate == 1.0


def _pairs(n_queries, n_items):
    """Query i's positive is item n_queries + i; every item is a candidate."""
    q = np.arange(n_queries)
    return ValidationSet(q, q + n_queries, np.arange(n_items))


def test_prior_factor_keeps_the_popularity_cosines_cannot_tell():
    # Cosines say nothing (all equal); each positive is the most popular
    # candidate.  Every factor above 0 ranks it first: the tie goes to 1.
    from gpu_consumer.validate import prior_factor
    vset = _pairs(5, 30)
    z = np.zeros((30, 4), np.float32)
    beta = np.linspace(0, 1, 30).astype(np.float32)
    beta[5:10] = 3.0
    f, mrr = prior_factor(z[:5], z[5:10], z, beta[5:10], beta, vset, rank_scale=100.0)
    assert f == 1.0
    assert all(m == mrr[1] > mrr[0] for m in mrr[1:])


def test_prior_factor_shrinks_a_prior_that_would_bury_the_positives():
    # Cosine 1 to the positive, 0 to the rest; the rest carry β = 5, so any
    # factor above 1/5 puts them first.  0 and 1/8 both rank every positive
    # first: the tie goes to 1/8, the one nearer 1.  The 20 candidates stand
    # for a catalogue of 2,000 (rank_scale 100): rank 2 among them is ~200.
    from gpu_consumer.validate import prior_factor
    vset = _pairs(4, 20)
    z = np.zeros((20, 20), np.float32)
    z[np.arange(4), np.arange(4)] = 1.0
    z[np.arange(4, 8), np.arange(4)] = 1.0          # positive i shares query i's direction
    z[8:, 4:16] = np.eye(12, dtype=np.float32)
    beta = np.full(20, 5.0, np.float32)
    beta[:8] = 0.0
    f, mrr = prior_factor(z[:4], z[4:8], z, beta[4:8], beta, vset, rank_scale=100.0)
    assert f == 0.125
    assert mrr[0] == mrr[1] == 1.0 and mrr[2] < 1.0


def test_prior_factor_chunks_rank_as_one_block():
    from gpu_consumer.validate import prior_factor
    rng = np.random.default_rng(0)
    vset = _pairs(40, 200)
    z = rng.standard_normal((200, 8)).astype(np.float32)
    beta = rng.random(200).astype(np.float32)
    f, whole = prior_factor(z[:40], z[40:80], z, beta[40:80], beta, vset, chunk=1000)
    g, parts = prior_factor(z[:40], z[40:80], z, beta[40:80], beta, vset, chunk=7)
    # The same ranks; only the order of the float64 sum of 1/rank differs.
    assert g == f and np.allclose(parts, whole, rtol=0, atol=1e-12)
