"""benchmarks/holdout_ab.py: the collapse diagnostic."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from benchmarks.holdout_ab import mean_cosine


def test_one_shared_direction_reads_one_and_random_directions_near_zero():
    rng = np.random.default_rng(1)
    same = np.tile(rng.normal(size=(1, 32)), (500, 1)) * rng.uniform(0.5, 2, (500, 1))
    assert mean_cosine(same) == pytest.approx(1.0, abs=1e-9)
    spread = rng.normal(size=(5000, 32))
    # 1,000 sampled rows: the 1,000 self-pairs give 1/1000, the rest average ~0.
    assert abs(mean_cosine(spread) - 1e-3) < 0.01


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 60), d=st.integers(1, 8), seed=st.integers(0, 1000))
def test_mean_cosine_is_a_mean_of_cosines(n, d, seed):
    v = np.random.default_rng(seed).normal(size=(n, d)) + 1e-3
    u = v / np.linalg.norm(v, axis=1, keepdims=True)
    # Fewer rows than the sample: every row is used, so it is the exact mean.
    assert mean_cosine(v) == pytest.approx(float((u @ u.T).mean()), abs=1e-9)
