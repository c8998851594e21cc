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
