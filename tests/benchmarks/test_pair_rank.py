"""benchmarks/pair_rank.py: rank-k approximations of the next-item pair counts."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from benchmarks.pair_rank import low_rank, pair_matrix


def test_pair_matrix_counts_both_directions():
    m = pair_matrix(np.array([0, 0, 1, 2]), np.array([1, 1, 0, 0]), 3)
    assert m.tolist() == [[0, 3, 1], [3, 0, 0], [1, 0, 0]]


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 12), pairs=st.integers(1, 40), seed=st.integers(0, 10_000))
def test_full_rank_signed_is_the_matrix_and_psd_drops_the_negative_part(n, pairs, seed):
    rng = np.random.default_rng(seed)
    m = pair_matrix(rng.integers(0, n, pairs), rng.integers(0, n, pairs), n)
    values, vectors = np.linalg.eigh(m)
    a, b = low_rank(values, vectors, n, "signed")
    np.testing.assert_allclose(a @ b.T, m, atol=1e-9)
    a, b = low_rank(values, vectors, n, "psd")
    psd = a @ b.T
    assert np.linalg.eigvalsh(psd).min() > -1e-9            # positive semidefinite
    # what is dropped is exactly the negative part: M = PSD part - |negative part|
    neg = vectors[:, values < 0] @ np.diag(values[values < 0]) @ vectors[:, values < 0].T
    np.testing.assert_allclose(psd + neg, m, atol=1e-9)


def test_rank_k_keeps_the_largest_eigenvalues_of_each_form():
    values = np.array([-5.0, -1.0, 2.0, 3.0])
    vectors = np.eye(4)
    a, _ = low_rank(values, vectors, 2, "signed")
    assert sorted(np.abs(a).sum(0).tolist()) == [3.0, 5.0]     # |-5| and 3
    a, _ = low_rank(values, vectors, 3, "psd")
    assert sorted(a.sum(0).tolist()) == [2.0, 3.0]              # only the positive ones
    with pytest.raises(ValueError, match="form"):
        low_rank(values, vectors, 2, "other")
