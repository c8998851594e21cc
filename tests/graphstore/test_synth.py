"""Synthetic graphs: determinism, planted communities, heavy-tailed degrees."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from graphstore import synth
from graphstore.synth import SynthParams, community_features, generate, power_law_ranks


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


def test_one_subcommunity_is_the_one_scale_graph_draw_for_draw():
    flat = generate(20_000, 300, 2000, 6, seed=3)
    same = generate(20_000, 300, 2000, 6, seed=3, subcommunities=1, p_sub=0.7)
    assert np.array_equal(flat.items, same.items) and np.array_equal(flat.users, same.users)


def test_subcommunities_plant_a_finer_scale_inside_the_communities():
    kw = dict(seed=0, p_in=0.8)
    g = generate(200_000, 2000, 5000, 5, subcommunities=20, p_sub=0.6, **kw)
    p = SynthParams(200_000, 2000, 5000, 5, subcommunities=20, p_sub=0.6, **kw)
    leaves = synth.item_leaves(p)
    assert np.array_equal(leaves % 5, g.communities)       # a leaf lies in one community
    community = np.mean(g.communities[g.items] == g.users % 5)
    leaf = np.mean(leaves[g.items] == g.users % 100)
    assert 0.82 < community < 0.86                         # p_in + (1 - p_in) / C, unchanged
    assert 0.47 < leaf < 0.53                              # p_in x p_sub + the rest by chance
    flat = generate(200_000, 2000, 5000, 5, **kw)
    assert np.mean(leaves[flat.items] == flat.users % 100) < 0.1


def test_subcommunities_must_fit_the_items():
    with pytest.raises(ValueError, match="subcommunities"):
        SynthParams(100, 50, 10, 5, subcommunities=20)
    with pytest.raises(ValueError, match="p_sub"):
        SynthParams(100, 50, 10, 5, subcommunities=2, p_sub=1.5)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 10_000), exponent=st.floats(0.5, 2.5))
def test_power_law_ranks_stay_in_range(n, exponent):
    ranks = power_law_ranks(np.linspace(0, 1, 257)[:-1], n, exponent)
    assert ranks.min() >= 0 and ranks.max() < n
    assert np.all(np.diff(ranks) >= 0)  # inverse CDF: monotone in u


@settings(max_examples=25, deadline=None)
@given(lo=st.integers(0, 299), size=st.integers(0, 300))
def test_community_features_are_the_same_whatever_the_slice(lo, size):
    p = SynthParams(1000, 300, 50, 7)
    whole = community_features(p, 6, 2.0)
    hi = min(300, lo + size)
    assert np.array_equal(community_features(p, 6, 2.0, lo, hi), whole[lo:hi])


def test_community_features_carry_the_communities_weakly(tmp_path, monkeypatch):
    monkeypatch.setattr(synth, "BLOCK", 128)       # several blocks for 1000 items
    p = SynthParams(1000, 1000, 50, 10)
    clean = community_features(p, 16, 0.0)
    community = np.arange(1000) % 10
    centres = clean[:10]
    assert np.array_equal(clean, centres[community])       # noise 0: the centre itself
    noisy = community_features(p, 16, 2.0)
    nearest = np.argmin(((noisy[:, None] - centres[None]) ** 2).sum(-1), axis=1)
    share = np.mean(nearest == community)
    assert 0.3 < share < 0.98          # above chance (0.1), short of a lookup
    # the noise is what the graph must average away: community means recover the centres
    means = np.stack([noisy[community == c].mean(0) for c in range(10)])
    assert np.abs(means - centres).max() < 1.0
    synth.write_features(p, tmp_path / "f.npy", 16, 2.0)
    written = np.load(tmp_path / "f.npy")
    assert written.dtype == np.float16 and written.shape == (1000, 16)
    np.testing.assert_allclose(written, noisy, rtol=1e-3, atol=1e-2)   # float16 rounding


def test_nested_features_put_leaf_mates_closer_than_community_mates():
    p = SynthParams(1000, 2000, 50, 4, subcommunities=5)       # 20 leaves of 100 items
    clean = community_features(p, 16, 0.0)
    leaf, community = np.arange(2000) % 20, np.arange(2000) % 4
    assert np.array_equal(clean, clean[:20][leaf])             # noise 0: the leaf's centre
    # leaves of one community share its centre: their centres' mean distance is
    # smaller than that of leaves of different communities
    d = ((clean[:20, None] - clean[None, :20]) ** 2).sum(-1)
    same = (np.arange(20)[:, None] % 4 == np.arange(20)[None] % 4) & ~np.eye(20, dtype=bool)
    assert d[same].mean() < d[~same & ~np.eye(20, dtype=bool)].mean()
    # one scale (S = 1) draws the features it always drew: the community centres alone
    flat = SynthParams(1000, 2000, 50, 4)
    centres = np.random.default_rng([1, 0xC3]).standard_normal((4, 16)).astype(np.float32)
    assert np.array_equal(community_features(flat, 16, 0.0), centres[community])
    assert not np.allclose(clean[:20], centres[np.arange(20) % 4])   # leaves have offsets
