import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from serving.evaluate import (EvaluationError, HeldOut, hits_at_k, load_held_out,
                              pair_metrics, paired_difference, rank_metrics, ranks_among_all,
                              top_k)
from serving.splits import Interactions


def _ia(rows):
    u, i, t = zip(*rows)
    return Interactions(np.array(u), np.array(i), np.array(t))


def _held():
    # user 0: train 0 (t1), 1 (t2) -> latest 1; valid 2, test 3
    # user 1: train 3 (t1)         -> latest 3; valid 1, test 0
    return HeldOut(tuple("abcde"), 2, _ia([(0, 0, 1), (0, 1, 2), (1, 3, 1)]),
                   _ia([(0, 2, 3), (1, 1, 2)]), _ia([(0, 3, 4), (1, 0, 3)]))


def test_hits_excludes_train_items_and_uses_latest_item():
    held = _held()
    calls = []

    def scorer(q):
        calls.append(q.tolist())
        s = np.zeros((len(q), 5), np.float32)
        s[:, 0] = 10    # user 0's train item: excluded for user 0, a hit for user 1's test
        s[:, 2] = 5
        s[:, 1] = 4
        return s
    assert hits_at_k(scorer, held, "valid", k=1) == 0.5     # user 0 -> 2 hit; user 1 -> 0 miss
    assert calls[0] == [1, 3]
    assert hits_at_k(scorer, held, "test", k=1) == 0.5      # user 1 -> 0 hit
    assert hits_at_k(scorer, held, "valid", k=2) == 0.5     # user 1: 0, 2 rank above 1
    assert hits_at_k(scorer, held, "valid", k=3) == 1.0


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 30), st.integers(1, 8), st.integers(0, 2**31 - 1))
def test_top_k_matches_full_sort(n, k, seed):
    s = np.random.default_rng(seed).integers(0, 5, size=(3, n)).astype(np.float32)
    got = top_k(s, k)
    for row, idx in zip(s, got):
        ref = sorted(range(n), key=lambda j: (-row[j], j))[:min(k, n)]
        assert idx.tolist() == ref


def test_pair_metrics_rank_and_scaled_mrr():
    scores = np.array([[0, 9, 8, 7, 6, 5]], np.float32)   # query 0
    scorer = lambda q: np.repeat(scores, len(q), axis=0)
    r = pair_metrics(scorer, np.array([0, 0]), np.array([1, 4]), k=2, scale=1,
                     num_items=6)
    assert r.hit_rate == 0.5 and r.mrr == pytest.approx((1 + 1 / 4) / 2)
    r = pair_metrics(scorer, np.array([0]), np.array([4]), k=2, scale=10, num_items=6)
    assert r.mrr == 1.0    # rank 4 within the first bucket of 10
    const = pair_metrics(lambda q: np.zeros((len(q), 6)), np.array([0]), np.array([3]),
                         num_items=6, scale=1)
    assert const.mrr == pytest.approx(1 / 3)   # 4 ties around it: middle rank 3
    with pytest.raises(EvaluationError):
        pair_metrics(scorer, np.array([0]), np.array([], np.int64), num_items=6)


def test_load_held_out_names_unknown_items(tmp_path):
    (tmp_path / "items.tsv").write_text("item\ttitle\na\tA\nb\tB\n")
    for part in ("train", "valid", "test"):
        (tmp_path / f"{part}.tsv").write_text("item\tuser\ttimestamp\na\tu\t1\n")
    held = load_held_out(tmp_path)
    assert held.item_ids == ("a", "b") and held.num_users == 1
    (tmp_path / "test.tsv").write_text("item\tuser\ttimestamp\nzz\tu\t1\n")
    with pytest.raises(EvaluationError, match=r"test.tsv:2: item 'zz'"):
        load_held_out(tmp_path)


def test_rank_metrics_hand_computed():
    r = rank_metrics(np.array([1, 5, 20, 200]), ks=(10, 50), scale=100, candidates=999)
    assert r.hit_rate == {10: 0.5, 50: 0.75}
    assert r.hit_rate_se[10] == pytest.approx(np.sqrt(0.25 / 4))
    assert r.mrr == pytest.approx((1 + 1 + 1 + 0.5) / 4)              # 1/ceil(rank/100)
    assert r.mrr_se == pytest.approx(np.std([1, 1, 1, 0.5], ddof=1) / 2)
    assert r.median_rank == 12.5
    # sorted positions floor(2 - 1) = 1 and ceil(2 + 1) = 3 (0-based): ranks 5 and 200
    assert r.median_rank_se == pytest.approx((200 - 5) / 2)


def test_ranks_among_all_ties_self_and_exclusion():
    scores = np.array([[9, 3, 3, 3, 5, 0],      # query 0, positive 2: 4 beats, 1 and 3 tie
                       [1, 7, 2, 2, 2, 9]], np.float32)   # query 1: positive 5 is best
    scorer = lambda q: scores[q]    # noqa: E731
    ranks = ranks_among_all(scorer, np.array([0, 1]), np.array([2, 5]))
    assert ranks.tolist() == [1 + 1 + 1, 1]
    excl = np.zeros((2, 6), np.float32)
    excl[0, [4, 2]] = 1             # leave out 4; the positive itself is never left out
    ranks = ranks_among_all(scorer, np.array([0, 1]), np.array([2, 5]),
                            exclude=lambda q: excl[q])
    assert ranks.tolist() == [2, 1]


def test_paired_difference_hand_computed():
    a = np.array([1, 5, 20, 200])
    b = np.array([3, 50, 8, 400])
    d = paired_difference(a, b, ks=(10,), scale=100)
    # hits: a [1, 1, 0, 0], b [1, 0, 1, 0] -> per pair [0, 1, -1, 0]
    assert d.pairs == 4 and d.hit_rate[10] == 0.0
    assert d.hit_rate_se[10] == pytest.approx(np.std([0, 1, -1, 0], ddof=1) / 2)
    # scaled reciprocal ranks: a [1, 1, 1, 0.5], b [1, 1, 1, 0.25]
    assert d.mrr == pytest.approx(0.25 / 4)
    assert d.mrr_se == pytest.approx(np.std([0, 0, 0, 0.25], ddof=1) / 2)
    assert d.as_dict()["hr@10_diff"] == 0.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 500), st.integers(1, 500)), min_size=2, max_size=60))
def test_paired_difference_is_the_metrics_difference_and_antisymmetric(pairs):
    a, b = (np.array(x) for x in zip(*pairs))
    d, back = paired_difference(a, b), paired_difference(b, a)
    ma = rank_metrics(a, candidates=999)
    mb = rank_metrics(b, candidates=999)
    for k in (10, 50):
        assert d.hit_rate[k] == pytest.approx(ma.hit_rate[k] - mb.hit_rate[k], abs=1e-12)
        assert back.hit_rate[k] == pytest.approx(-d.hit_rate[k], abs=1e-12)
        assert back.hit_rate_se[k] == pytest.approx(d.hit_rate_se[k])
    assert d.mrr == pytest.approx(ma.mrr - mb.mrr, abs=1e-12)
    same = paired_difference(a, a)
    assert same.hit_rate[10] == 0 and same.hit_rate_se[10] == 0 and same.mrr_se == 0


def test_paired_difference_over_runs_averages_each_pair_first():
    # two runs (seeds) of A and of B on the same three pairs
    a = np.array([[1, 50, 5], [20, 3, 5]])
    b = np.array([[9, 9, 90], [9, 90, 90]])
    d = paired_difference(a, b, ks=(10,), scale=100)
    # hits a [[1, 0, 1], [0, 1, 1]], b [[1, 1, 0], [1, 0, 0]]: per run [0, -1, 1], [-1, 1, 1]
    # per pair, the runs' mean: [-0.5, 0, 1]
    assert d.pairs == 3 and d.hit_rate[10] == pytest.approx(0.5 / 3)
    assert d.hit_rate_se[10] == pytest.approx(np.std([-0.5, 0, 1], ddof=1) / np.sqrt(3))
    # one run as a row is the 1-D difference
    one = paired_difference(a[:1], b[:1]).as_dict()
    assert one == paired_difference(a[0], b[0]).as_dict()
    with pytest.raises(EvaluationError, match=r"\[runs, pairs\]"):
        paired_difference(a, b[:1])
    with pytest.raises(EvaluationError, match=r"\[runs, pairs\]"):
        paired_difference(np.zeros((0, 3)), np.zeros((0, 3)))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 4))
def test_runs_that_agree_give_the_one_run_difference(seed, runs):
    rng = np.random.default_rng(seed)
    a, b = rng.integers(1, 200, 50), rng.integers(1, 200, 50)
    many = paired_difference(np.tile(a, (runs, 1)), np.tile(b, (runs, 1))).as_dict()
    assert many == paired_difference(a, b).as_dict()


def test_paired_difference_of_correlated_runs_is_sharper_than_independent_ses():
    rng = np.random.default_rng(0)
    a = rng.integers(1, 100, 3000)
    b = a.copy()
    b[:150] += 20          # B loses a few of A's hits, agrees everywhere else
    d = paired_difference(a, b)
    ma, mb = rank_metrics(a, candidates=99), rank_metrics(b, candidates=99)
    independent = np.hypot(ma.hit_rate_se[10], mb.hit_rate_se[10])
    assert d.hit_rate[10] > 0 and d.hit_rate_se[10] < independent / 2


def test_paired_difference_refuses_unmatched_ranks():
    with pytest.raises(EvaluationError, match="same order"):
        paired_difference(np.array([1, 2, 3]), np.array([1, 2]))
    with pytest.raises(EvaluationError, match="two pairs or more"):
        paired_difference(np.array([1]), np.array([2]))
