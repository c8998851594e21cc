"""Synthetic graphs: determinism, planted communities, heavy-tailed degrees."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from graphstore.synth import generate, power_law_ranks


def test_deterministic_and_in_range():
    a, b = generate(5000, 50, 300, 5, seed=7), generate(5000, 50, 300, 5, seed=7)
    assert np.array_equal(a.items, b.items) and np.array_equal(a.users, b.users)
    assert not np.array_equal(a.items, generate(5000, 50, 300, 5, seed=8).items)
    assert a.items.min() >= 0 and a.items.max() < 50 and a.users.max() < 300
    assert np.array_equal(a.communities, np.arange(50) % 5)


def test_communities_are_planted_and_degrees_heavy_tailed():
    g = generate(100_000, 500, 5000, 10, seed=0, p_in=0.9)
    same = np.mean(g.communities[g.items] == g.users % 10)
    assert 0.88 < same < 0.93           # p_in + (1 - p_in) / C
    degrees = np.sort(np.bincount(g.users, minlength=5000))[::-1]
    assert degrees[0] > 20 * np.median(degrees)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 10_000), exponent=st.floats(0.5, 2.5))
def test_power_law_ranks_stay_in_range(n, exponent):
    ranks = power_law_ranks(np.linspace(0, 1, 257)[:-1], n, exponent)
    assert ranks.min() >= 0 and ranks.max() < n
    assert np.all(np.diff(ranks) >= 0)  # inverse CDF: monotone in u
