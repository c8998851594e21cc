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
    q, p = np.arange(100), np.arange(100) + 1000
    a = pairs.split(q, p, 0.1, seed=3)
    b = pairs.split(q, p, 0.1, seed=3)
    assert len(a) == 90 and a.val_queries.shape == (10,)
    assert not set(a.queries.tolist()) & set(a.val_queries.tolist())
    np.testing.assert_array_equal(a.val_queries, b.val_queries)
    np.testing.assert_array_equal(a.positives - a.queries, 1000)


def test_split_drops_self_pairs():
    t = pairs.split([1, 2, 3], [1, 5, 3], 0.0, seed=0)
    assert t.queries.tolist() == [2] and t.positives.tolist() == [5]


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
