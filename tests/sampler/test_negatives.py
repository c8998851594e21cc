"""Easy negatives (uniform / degree^0.75) and PageRank-ranked hard negatives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sampler import negatives
from sampler.neighbourhoods import ranked_visits
from tests.sampler.conftest import random_graph
from tests.sampler.reference import chi2_pvalue


def test_uniform_easy_negatives_are_distinct_and_in_range():
    neg = negatives.easy_negatives(100, 60, np.random.default_rng(0))
    assert neg.shape == (60,) and np.unique(neg).size == 60
    assert neg.min() >= 0 and neg.max() < 100
    assert negatives.easy_negatives(10, 500, np.random.default_rng(0)).size == 10
    assert negatives.easy_negatives(0, 5, np.random.default_rng(0)).size == 0


def test_degree_negatives_follow_degree_to_the_075():
    deg = np.array([1, 2, 4, 8, 16, 0])
    rng = np.random.default_rng(1)
    draws = np.concatenate([negatives.easy_negatives(6, 1, rng, "degree", deg)
                            for _ in range(20000)])
    probs = deg[:5] ** 0.75 / (deg[:5] ** 0.75).sum()
    counts = np.bincount(draws, minlength=6)
    assert counts[5] == 0
    assert chi2_pvalue(counts[:5], probs) > 1e-3
    every = negatives.easy_negatives(6, 6, rng, "degree", deg)  # zero-degree item last
    assert sorted(every.tolist()) == list(range(6)) and every[-1] == 5


def test_unknown_distribution():
    with pytest.raises(ValueError, match="expected 'uniform' or 'degree'"):
        negatives.easy_negatives(10, 2, np.random.default_rng(0), "zipf")


@pytest.mark.parametrize("n, expected", [(10**6, (2000, 5000)), (50_000, (2000, 5000)),
                                         (1000, (40, 100)), (10, (0, 1))])
def test_rank_window_scales_down_on_small_catalogues(n, expected):
    assert negatives.rank_window(n, (2000, 5000), 50_000) == expected


def test_hard_negatives_come_from_the_rank_window():
    g = random_graph(num_items=400, num_ctx=80, m=2000, seed=2)
    q = np.arange(0, 100, 7)
    p = (q + 1) % 398
    args = dict(num_walks=50, walk_length=20, restart_prob=0.15, seed=9)
    hard = negatives.hard_negatives(g, q, p, 6, rank=(10, 30), full_catalogue=400, **args)
    ranked = ranked_visits(g, q, top_k=30, exclude=[[x] for x in p], **args)
    assert hard.shape == (q.size, 6)
    full = 0
    for i in range(q.size):
        reached = int((ranked.counts[i] > 0).sum())
        lo, hi = (10, 30) if reached >= 30 else (10 * reached // 30, reached)
        full += reached >= 30
        if hi > lo:  # else too little was reached: uniform fallback
            assert set(hard[i]) <= set(ranked.items[i, lo:hi].tolist())
        assert q[i] not in hard[i] and p[i] not in hard[i]
    assert full >= q.size // 2
    again = negatives.hard_negatives(g, q, p, 6, rank=(10, 30), full_catalogue=400, **args)
    np.testing.assert_array_equal(hard, again)


def test_hard_negatives_for_unreachable_queries_fall_back_to_uniform():
    g = random_graph(num_items=50, seed=4, isolated=3)
    q, p = np.array([49, 48]), np.array([0, 1])
    hard = negatives.hard_negatives(g, q, p, 4, rank=(5, 10), full_catalogue=50, num_walks=5,
                                    walk_length=5, restart_prob=0.1, seed=1)
    assert hard.shape == (2, 4) and (hard >= 0).all() and (hard < 50).all()
    assert not (hard == q[:, None]).any() and not (hard == p[:, None]).any()
    assert negatives.hard_negatives(g, q, p, 0, rank=(5, 10), full_catalogue=50, num_walks=5,
                                    walk_length=5, restart_prob=0.1, seed=1).shape == (2, 0)


def test_windows_and_draw_are_what_hard_negatives_gives():
    g = random_graph(num_items=400, num_ctx=80, m=2000, seed=2)
    q = np.arange(0, 100, 7)
    p = (q + 1) % 398
    args = dict(rank=(10, 30), full_catalogue=400, num_walks=50, walk_length=20,
                restart_prob=0.15, seed=9)
    windows = negatives.hard_negative_windows(g, q, p, **args)
    drawn = negatives.draw_hard_negatives(windows, q, p, 6, g.num_items, seed=9)
    np.testing.assert_array_equal(drawn, negatives.hard_negatives(g, q, p, 6, **args))
    assert (windows.stop <= 30).all() and (windows.start <= windows.stop).all()


def _windows(rows):
    """Windows whose row i is exactly rows[i] (an empty row: nothing reached)."""
    width = max(1, max(len(r) for r in rows))
    items = np.full((len(rows), width), -1, np.int64)
    for i, r in enumerate(rows):
        items[i, :len(r)] = r
    return negatives.Windows(items, np.zeros(len(rows), np.int64),
                             np.array([len(r) for r in rows], np.int64))


def test_logq_correction_weighs_window_items_by_how_much_more_they_are_drawn():
    n_items, easy = 100, np.array([3, 50, 7, 90])
    rates = negatives.easy_rates(n_items, 4)                       # 4 / 100 each
    np.testing.assert_allclose(rates, 0.04)
    windows = _windows([[3, 7, 11, 12, 13], []])                  # row 1 reached nothing
    hard = np.array([[11, 3], [42, 43]])
    got = negatives.logq_correction(windows, hard, n_items, easy, rates)
    inside = np.log1p((2 / 5) / 0.04)        # 2 hard draws over 5 window items, per easy rate
    fallback = np.log1p((2 / 100) / 0.04)    # 2 uniform draws over the catalogue
    np.testing.assert_allclose(got[0], [inside, 0, inside, 0, inside, inside], rtol=1e-6)
    np.testing.assert_allclose(got[1], np.full(6, fallback), rtol=1e-6)
    assert got.dtype == np.float32
    assert negatives.logq_correction(windows, np.empty((2, 0), np.int64), n_items, easy,
                                     rates).shape == (2, 4)
    assert not negatives.logq_correction(windows, hard, n_items, easy[:0], rates).any()


def test_logq_correction_uses_each_items_own_easy_rate_under_degree_negatives():
    deg = np.array([1, 16, 1, 16, 0])
    rates = negatives.easy_rates(5, 2, "degree", deg)
    w = deg ** 0.75
    np.testing.assert_allclose(rates, np.minimum(1, 2 * w / w.sum()))
    got = negatives.logq_correction(_windows([[0, 1]]), np.array([[0, 1]]), 5,
                                    np.array([1, 3]), rates)
    np.testing.assert_allclose(got[0], [np.log1p(1 / rates[1]), 0, np.log1p(1 / rates[0]),
                                        np.log1p(1 / rates[1])], rtol=1e-6)
    assert got[0, 2] > got[0, 3]             # the rarely drawn item needs the larger correction


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 8), st.integers(0, 12), st.integers(0, 3),
       st.booleans())
def test_logq_correction_matches_a_row_by_row_reference(seed, rows, n_easy, h, degree):
    rng = np.random.default_rng(seed)
    n_items = 40
    items = np.stack([rng.permutation(n_items)[:15] for _ in range(rows)])
    start = rng.integers(0, 8, rows)
    stop = np.where(rng.random(rows) < 0.2, start, rng.integers(8, 16, rows))  # some empty
    items[np.arange(15)[None, :] >= stop[:, None]] = -1      # unreached ranks are padding
    windows = negatives.Windows(items, start, stop)
    easy = rng.choice(n_items, n_easy, replace=False)
    hard = rng.integers(0, n_items, (rows, h))
    rates = negatives.easy_rates(n_items, max(1, n_easy), "degree" if degree else "uniform",
                                 rng.integers(0, 20, n_items) if degree else None)
    got = negatives.logq_correction(windows, hard, n_items, easy, rates)
    want = np.zeros((rows, n_easy + h))
    if h and n_easy:
        r = np.maximum(rates, 1e-12)
        for i in range(rows):
            a, z = start[i], stop[i]
            rate = h / (z - a) if z > a else h / n_items
            inside = np.isin(easy, items[i, a:z]) if z > a else np.ones(n_easy, bool)
            want[i, :n_easy] = np.where(inside, np.log1p(rate / r[easy]), 0)
            want[i, n_easy:] = np.log1p(rate / r[hard[i]])
    np.testing.assert_allclose(got, want, rtol=1e-6)
