"""Training pairs: co-occurrence positives share a context, the split is
disjoint and deterministic, an epoch covers every training pair once."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphstore import build_from_arrays
from sampler import pairs
from tests.sampler.conftest import random_graph, two_slot_graph


def _share_a_context(g, a, b) -> bool:
    ctx = lambda i: set(g.item_ctx[g.item_ptr[i * g.num_slots]:  # noqa: E731
                                   g.item_ptr[(i + 1) * g.num_slots]].tolist())
    return bool(ctx(a) & ctx(b))


@pytest.mark.parametrize("make", [random_graph, two_slot_graph])
def test_cooccurrence_pairs_share_a_context(make):
    g = make()
    q, p = pairs.cooccurrence_pairs(g, 3, seed=1)
    assert q.size > 0 and (q != p).all()
    assert all(_share_a_context(g, a, b) for a, b in zip(q, p))
    deg = g.degrees()
    assert set(q.tolist()) <= set(np.flatnonzero(deg).tolist())  # isolated items: no pairs
    q2, p2 = pairs.cooccurrence_pairs(g, 3, seed=1)
    np.testing.assert_array_equal(q, q2)
    np.testing.assert_array_equal(p, p2)


def test_split_is_disjoint_and_deterministic():
    q, p = np.arange(10_000), np.arange(10_000) + 20_000
    a = pairs.split(q, p, 0.1, seed=3)
    b = pairs.split(q, p, 0.1, seed=3)
    assert 900 <= a.val_queries.shape[0] <= 1100        # ~10% of 10,000 distinct pairs
    assert len(a) + a.val_queries.shape[0] == 10_000
    assert not set(a.queries.tolist()) & set(a.val_queries.tolist())
    np.testing.assert_array_equal(a.val_queries, b.val_queries)
    np.testing.assert_array_equal(a.positives - a.queries, 20_000)
    c = pairs.split(q, p, 0.1, seed=4)
    assert not np.array_equal(a.val_queries, c.val_queries)


def _unordered(q, p):
    return {(min(a, b), max(a, b)) for a, b in zip(q.tolist(), p.tolist())}


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 400), items=st.integers(2, 30), fraction=st.floats(0.0, 0.5),
       seed=st.integers(0, 2**32))
def test_a_held_out_pair_is_never_trained_on_either_way_round(n, items, fraction, seed):
    """Drawn positives repeat and come both ways round; every copy of a held-out
    item pair leaves the training side, and the held-out side has one of each."""
    rng = np.random.default_rng(seed)
    q, p = rng.integers(0, items, n), rng.integers(0, items, n)
    t = pairs.split(q, p, fraction, seed=seed)
    held = _unordered(t.val_queries, t.val_positives)
    assert not held & _unordered(t.queries, t.positives)
    assert len(held) == t.val_queries.shape[0]
    kept = q != p
    assert len(t) + sum(1 for a, b in zip(q[kept], p[kept])
                        if (min(a, b), max(a, b)) in held) == int(kept.sum())
    assert held | _unordered(t.queries, t.positives) == _unordered(q[kept], p[kept])


def test_split_drops_self_pairs():
    t = pairs.split([1, 2, 3], [1, 5, 3], 0.0, seed=0)
    assert t.queries.tolist() == [2] and t.positives.tolist() == [5]


def test_split_keeps_int32_ids_and_batches_hand_out_int64():
    q, p = np.arange(50, dtype=np.int64), np.arange(50, dtype=np.int64) + 7
    t = pairs.split(q, p, 0.2, seed=1)
    assert t.queries.dtype == np.int32 and t.val_positives.dtype == np.int32
    bq, bp = t.batch(0, 0, 8, seed=1)
    assert bq.dtype == np.int64 and (bp - bq == 7).all()


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 3000), cuts=st.lists(st.integers(0, 3000), max_size=6),
       epoch=st.integers(0, 5), seed=st.integers(0, 2**32))
def test_an_epochs_order_does_not_depend_on_how_far_it_was_asked_for(n, cuts, epoch, seed):
    """Producers extend the shuffle as far as their batches reach, in any
    order; every one of them must see the same order, and all of it is a
    permutation."""
    whole = pairs.epoch_order(n, seed, epoch)
    assert whole.dtype == np.int32
    np.testing.assert_array_equal(np.sort(whole), np.arange(n))
    lazy = pairs.EpochOrder(n, seed, epoch)
    for stop in cuts:
        np.testing.assert_array_equal(lazy.take(stop // 2, stop), whole[stop // 2:stop])
    np.testing.assert_array_equal(lazy.take(0, n), whole)


def test_epochs_and_seeds_shuffle_differently():
    a = pairs.epoch_order(1000, 7, 0)
    assert not np.array_equal(a, pairs.epoch_order(1000, 7, 1))
    assert not np.array_equal(a, pairs.epoch_order(1000, 8, 0))
    assert not np.array_equal(a, np.arange(1000))
    # a prefix is a uniform sample: over many seeds each pair leads about equally often
    firsts = np.bincount([pairs.EpochOrder(10, s, 0).take(0, 1)[0] for s in range(5000)],
                         minlength=10)
    assert firsts.min() > 400 and firsts.max() < 600


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 300), batch=st.integers(1, 64), epoch=st.integers(0, 5),
       seed=st.integers(0, 2**32))
def test_epoch_covers_every_pair_exactly_once(n, batch, epoch, seed):
    t = pairs.TrainingPairs(np.arange(n), np.arange(n) + n, np.empty(0), np.empty(0))
    seen = np.concatenate([t.batch(epoch, i, batch, seed)[0] for i in range(t.num_batches(batch))])
    np.testing.assert_array_equal(np.sort(seen), np.arange(n))


def test_batch_index_out_of_range():
    t = pairs.TrainingPairs(np.arange(10), np.arange(10), np.empty(0), np.empty(0))
    with pytest.raises(ValueError, match="batch 3 of epoch 0 does not exist: an epoch has 3"):
        t.batch(0, 3, 4, seed=0)


@pytest.fixture(scope="module")
def idmap(tmp_path_factory):
    store = build_from_arrays(tmp_path_factory.mktemp("p") / "s",
                              edges={"r": ("item", "user", np.arange(4), np.arange(4) % 2)},
                              ids={"item": ["a", "b", "c", "d"]})
    return store.ids("item")


def test_pair_file_by_external_id(tmp_path, idmap):
    f = tmp_path / "pairs.tsv"
    f.write_text("# query\tpositive\na\tb\n\nc\td\nd,a\n")
    q, p = pairs.read_pair_file(f, idmap)
    assert q.tolist() == [0, 2, 3] and p.tolist() == [1, 3, 0]


@pytest.mark.parametrize("text, message", [
    ("a\tb\tc\n", r"pairs.tsv:1: expected 2 columns"),
    ("a\tzz\n", r"pairs.tsv: .*zz"),
    ("# nothing\n", "no pairs found"),
])
def test_bad_pair_files(tmp_path, idmap, text, message):
    f = tmp_path / "pairs.tsv"
    f.write_text(text)
    with pytest.raises(pairs.PairFileError, match=message):
        pairs.read_pair_file(f, idmap)


def test_missing_pair_file(tmp_path, idmap):
    with pytest.raises(pairs.PairFileError, match="cannot read pair file"):
        pairs.read_pair_file(tmp_path / "nope.tsv", idmap)


def _exact_ppr_endpoints(g, restart: float, max_steps: int) -> np.ndarray:
    """[n, n] law of a walk's endpoint: k >= 1 item->context->item steps, stopping
    after each with probability `restart` (forced at max_steps), one slot."""
    n = g.num_items
    step = np.zeros((n, n))
    for i in range(n):
        ctx = g.item_ctx[g.item_ptr[i]:g.item_ptr[i + 1]]
        for c in ctx:
            items = g.ctx_item[g.ctx_ptr[c]:g.ctx_ptr[c + 1]]
            step[i, items] += 1.0 / (len(ctx) * len(items))
    law, reach = np.zeros((n, n)), np.eye(n)
    for k in range(1, max_steps + 1):
        reach = reach @ step
        law += reach * (restart * (1 - restart) ** (k - 1) if k < max_steps
                        else (1 - restart) ** (k - 1))
    return law


def test_walk_pairs_sample_personalised_pagerank():
    g = random_graph(num_items=30, num_ctx=8, m=80, isolated=2)
    restart, per_item = 0.5, 4000
    q, p = pairs.walk_pairs(g, per_item, restart, 6, seed=3)
    assert (q != p).all()
    assert set(q.tolist()) <= set(np.flatnonzero(g.degrees()).tolist())
    law = _exact_ppr_endpoints(g, restart, 6)
    np.fill_diagonal(law, 0.0)                      # a walk back to its start is dropped
    counts = np.zeros_like(law)
    np.add.at(counts, (q, p), 1.0)
    for i in np.flatnonzero(law.sum(1) > 0):
        empirical = counts[i] / counts[i].sum()
        expected = law[i] / law[i].sum()
        # 4,000 draws per item over <= 28 outcomes: total variation ~0.04 at most by chance.
        assert 0.5 * np.abs(empirical - expected).sum() < 0.06, i
    q2, p2 = pairs.walk_pairs(g, per_item, restart, 6, seed=3)
    np.testing.assert_array_equal(p, p2)


def test_walk_pairs_on_two_slots_never_pair_an_item_with_itself_and_repeat():
    g = two_slot_graph()
    q, p = pairs.walk_pairs(g, 20, 0.5, 8, seed=0)
    assert q.size > 0 and (q != p).all()
    assert set(np.unique(q).tolist()) <= set(np.flatnonzero(g.degrees()).tolist())
    np.testing.assert_array_equal(p, pairs.walk_pairs(g, 20, 0.5, 8, seed=0)[1])
    assert not np.array_equal(p, pairs.walk_pairs(g, 20, 0.5, 8, seed=1)[1])
