"""benchmarks/pooling_signal.py: what weighting the pooled neighbours can add."""

import argparse

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from benchmarks.pooling_signal import neighbourhood_spec, pooled_signal

CENTRES = np.array([[1.0, 0.0], [-1.0, 0.0]])


def test_visit_weights_find_the_centre_a_mean_misses():
    # item 0 the query (centre 0); item 1 at centre 0 visited 8 times, items 2
    # and 3 at centre 1 once each; the second query's walks reached nothing
    features = np.array([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]])
    label = community = np.array([0, 0, 1, 1])
    neighbours = np.array([[1, 2, 3, -1], [-1, -1, -1, -1]])
    weights = np.array([[0.8, 0.1, 0.1, 0.0], [0.0, 0.0, 0.0, 0.0]])
    out = pooled_signal(features, CENTRES, label, community, np.array([0, 3]), neighbours,
                        weights)
    assert out["queries"] == 1 and out["count_ratio"] == 8.0
    imp, uni = out["importance"], out["uniform"]
    assert imp["purity"] == 0.8 and uni["purity"] == pytest.approx(1 / 3, abs=1e-4)
    assert imp["centre_accuracy"] == 1.0 and uni["centre_accuracy"] == 0.0   # (0.6, 0) vs (-1/3, 0)
    assert imp["centre_accuracy_with_self"] == uni["centre_accuracy_with_self"] == 1.0
    assert out["self_centre_accuracy"] == 1.0


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 6))
def test_equal_weights_pool_as_a_mean(seed, k):
    rng = np.random.default_rng(seed)
    n, q = 30, 8
    features = rng.normal(size=(n, 2))
    label = rng.integers(0, 2, n)
    neighbours = rng.integers(0, n, (q, k))
    neighbours[:, k // 2 + 1:] = -1                       # padding after the first few
    weights = np.where(neighbours >= 0, 1.0, 0.0)
    weights /= weights.sum(axis=1, keepdims=True)
    out = pooled_signal(features, CENTRES, label, label, rng.integers(0, n, q), neighbours,
                        weights)
    assert out["importance"] == out["uniform"] and out["count_ratio"] == 1.0


def test_a_neighbourhood_is_walks_by_steps_and_kept():
    assert neighbourhood_spec("50x2:20") == (50, 2, 20)
    for bad in ("50x2", "50:20", "ax2:3", "0x2:5"):
        with pytest.raises(argparse.ArgumentTypeError, match="neighbourhood"):
            neighbourhood_spec(bad)
