"""BatchBuilder: tickets -> minibatches, deterministic, leak-free, and an
epoch that covers every training pair exactly once."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from graphstore import build_from_arrays
from sagewalk.config import load
from sagewalk.errors import ConfigError
from worker.assemble import BatchBuilder
from worker.batch import MiniBatch
from worker.ticket import Ticket

OVERRIDES = ["sampler.batch_size=32", "sampler.easy_negatives=20", "sampler.num_walks=8",
             "sampler.walk_length=10", "sampler.num_neighbors=6"]


def _cfg(*extra):
    return load(None, OVERRIDES + list(extra)).sampler


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rng = np.random.default_rng(0)
    n_items, n_users = 300, 60
    # planted structure: items i and i+1 share a user often
    items = np.concatenate([rng.integers(0, n_items - 2, 1500), np.arange(n_items - 2)])
    users = np.concatenate([rng.integers(0, n_users, 1500), np.arange(n_items - 2) % n_users])
    return build_from_arrays(
        tmp_path_factory.mktemp("asm") / "store",
        edges={"rates": ("item", "user", items, users),
               "tagged": ("item", "tag", rng.integers(0, n_items - 2, 200),
                          rng.integers(0, 12, 200))},
        node_counts={"item": n_items, "user": n_users, "tag": 12},
        features={"item": rng.normal(size=(n_items, 8)).astype(np.float32),
                  "tag": rng.normal(size=(12, 3)).astype(np.float32)})


@pytest.fixture(scope="module")
def builder(store):
    return BatchBuilder(store, _cfg())


def _equal(a: MiniBatch, b: MiniBatch) -> bool:
    x, y = a.to_arrays(), b.to_arrays()
    return x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)


def test_same_ticket_same_batch_in_a_fresh_builder_and_any_thread_count(store, builder):
    ticket = Ticket(1, 2, 987, 3)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = builder.build(ticket)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = BatchBuilder(store, _cfg()).build(ticket)
    finally:
        numba.set_num_threads(before)
    assert _equal(one, two)
    assert not _equal(one, builder.build(Ticket(1, 2, 988, 3)))
    assert _equal(one, MiniBatch.from_arrays(one.to_arrays()))


def test_epoch_covers_every_training_pair_once_and_never_a_validation_pair(builder):
    pairs = builder.pairs
    seen = []
    for b in range(builder.num_batches(0)):
        mb = builder.build(Ticket(0, b, 1000 + b, 0))
        t = mb.graph.targets
        seen += list(zip(t[mb.queries].tolist(), t[mb.positives].tolist()))
    expected = sorted(zip(pairs.queries.tolist(), pairs.positives.tolist()))
    assert sorted(seen) == expected
    vq, vp = builder.validation_pairs()
    assert vq.size > 0 and vq.size == vp.size
    assert builder.num_batches(0) == -(-len(pairs) // 32)


def test_batch_contents(store, builder):
    mb = builder.build(Ticket(0, 0, 5, 2))
    g = mb.graph
    t = g.targets
    assert mb.size == 32 and mb.easy_negatives.shape == (20,)
    assert mb.hard_negatives.shape == (32, 2)
    for arr in (mb.queries, mb.positives, mb.easy_negatives, mb.hard_negatives):
        assert arr.dtype == np.int32 and arr.min() >= 0 and arr.max() < t.size
    assert np.unique(t).size == t.size
    np.testing.assert_array_equal(mb.features, store.features("item")[g.input_nodes])
    assert len(g.blocks) == 2 and mb.context_features == ()
    last = g.blocks[-1]
    np.testing.assert_allclose(last.neighbor_weight.sum(1)[last.neighbor_weight.sum(1) > 0], 1,
                               rtol=1e-5)
    hq = t[mb.hard_negatives]
    assert not (hq == t[mb.queries][:, None]).any() and not (hq == t[mb.positives][:, None]).any()


def test_no_pair_link_leaks_into_either_neighbourhood(builder):
    for b in range(3):
        mb = builder.build(Ticket(0, b, 77 + b, 0))
        g = mb.graph
        for k, block in enumerate(g.blocks):
            ids = np.where(block.neighbor_weight > 0, g.node_sets[k][block.neighbor_index], -1)
            for q, p in zip(mb.queries, mb.positives):
                assert g.targets[p] not in ids[q] and g.targets[q] not in ids[p]


def test_leak_ban_is_real(tmp_path):
    """Items 2j and 2j+1 share user j and nothing else: each is the other's only
    neighbour and its only positive, so without the ban every neighbourhood leaks."""
    items = np.arange(100)
    s = build_from_arrays(tmp_path / "s", edges={"r": ("item", "user", items, items // 2)})
    b = BatchBuilder(s, _cfg("sampler.validation_fraction=0.0"))
    q, p = b.pairs.queries, b.pairs.positives
    assert ((q ^ 1) == p).all()
    assert (b.neighbourhoods(q).neighbors[:, 0] == p).all()
    mb = b.build(Ticket(0, 0, 3, 0))
    pair_rows = np.concatenate([mb.queries, mb.positives])
    assert (mb.graph.blocks[-1].neighbor_weight[pair_rows] == 0).all()


def test_inference_batch(builder, store):
    nodes = np.array([7, 3, 299, 150])
    mb = builder.inference_batch(nodes)
    np.testing.assert_array_equal(mb.graph.targets, nodes)
    np.testing.assert_array_equal(mb.queries, np.arange(4))
    assert mb.positives.size == 0 and mb.easy_negatives.size == 0
    assert mb.hard_negatives.shape == (4, 0)
    np.testing.assert_array_equal(mb.features, store.features("item")[mb.graph.input_nodes])
    again = builder.inference_batch(np.array([3, 150]))
    np.testing.assert_array_equal(again.graph.blocks[-1].neighbor_weight,
                                  mb.graph.blocks[-1].neighbor_weight[[1, 3]])
    assert builder.inference_batch(np.empty(0, np.int64)).graph.targets.size == 0
    with pytest.raises(ValueError, match="distinct"):
        builder.inference_batch(np.array([1, 1]))


def test_multisage_batches_carry_contexts(store):
    b = BatchBuilder(store, _cfg(), model="multisage")
    mb = b.build(Ticket(0, 1, 11, 1))
    g = mb.graph
    assert b.graph.context_types == ("user", "tag")
    assert g.context_ids is not None and g.context_ids.size == g.context_types.size
    for block in g.blocks:
        assert block.neighbor_index.shape[1] == 20  # multisage_num_neighbors
        valid = block.neighbor_weight > 0
        assert (block.context_index[valid] >= 0).all() and (block.context_index[~valid] == -1).all()
    users, tags = mb.context_features
    assert users.shape == ((g.context_types == 0).sum(), 0)  # users have no features
    np.testing.assert_array_equal(tags, store.features("tag")[g.context_ids[g.context_types == 1]])
    assert _equal(mb, BatchBuilder(store, _cfg(), model="multisage").build(Ticket(0, 1, 11, 1)))


def test_multisage_walks_take_their_own_length_and_count_and_zero_means_pinsages(store):
    from sampler.neighbourhoods import multisage_neighbourhoods
    seeds = np.arange(40)
    own = BatchBuilder(store, _cfg("sampler.multisage_walk_length=2",
                                   "sampler.multisage_num_walks=5"), model="multisage")
    inherit = BatchBuilder(store, _cfg(), model="multisage")
    for builder, walks, length in ((own, 5, 2), (inherit, 8, 10)):
        expected = multisage_neighbourhoods(builder.graph, seeds, num_walks=walks,
                                            walk_length=length, restart_prob=0.1, top_k=20,
                                            seed=5, exclude=[[] for _ in seeds])
        got = builder._sampler(5)(seeds, np.zeros(41, np.int64), np.empty(0, np.int64))
        np.testing.assert_array_equal(got.neighbors, expected.neighbors)
        np.testing.assert_array_equal(got.context, expected.context)
    assert own.digest != inherit.digest


def test_digest_names_store_config_and_model(store, builder):
    assert builder.digest == BatchBuilder(store, _cfg()).digest
    assert builder.digest != BatchBuilder(store, _cfg("sampler.num_walks=9")).digest
    assert builder.digest != BatchBuilder(store, _cfg(), model="multisage").digest


def test_pair_file_positives(tmp_path, store):
    f = tmp_path / "pairs.tsv"
    f.write_text("".join(f"{i}\t{i + 1}\n" for i in range(0, 200, 2)))
    b = BatchBuilder(store, _cfg(f"sampler.positives='{f}'", "sampler.validation_fraction=0.1"))
    held = b.validation_pairs()[0].size
    assert len(b.pairs) + held == 100 and 0 < held < 25    # ~10% of 100 distinct pairs
    assert ((b.pairs.positives - b.pairs.queries) == 1).all()
    assert not set(b.pairs.queries.tolist()) & set(b.validation_pairs()[0].tolist())


def test_errors(store, builder):
    with pytest.raises(ValueError, match="batch 999 does not exist"):
        builder.build(Ticket(0, 999, 1, 0))
    with pytest.raises(ConfigError, match="trainer.model"):
        BatchBuilder(store, _cfg(), model="gcn")


def test_store_without_features_sends_zero_width_features(tmp_path):
    rng = np.random.default_rng(1)
    s = build_from_arrays(tmp_path / "s", edges={"r": ("item", "user", rng.integers(0, 40, 200),
                                                       rng.integers(0, 9, 200))})
    mb = BatchBuilder(s, _cfg()).build(Ticket(0, 0, 1, 0))
    assert mb.features.shape == (mb.graph.input_nodes.size, 0)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n_items=st.integers(3, 40), n_users=st.integers(1, 8), m=st.integers(2, 120),
       layers=st.integers(1, 3), k=st.integers(1, 5), batch=st.integers(1, 9),
       hard=st.integers(0, 3), model=st.sampled_from(["pinsage", "multisage"]),
       seed=st.integers(0, 2**31))
def test_invariants_on_random_graphs(tmp_path_factory, n_items, n_users, m, layers, k, batch,
                                     hard, model, seed):
    rng = np.random.default_rng(seed)
    s = build_from_arrays(tmp_path_factory.mktemp("h") / "s",
                          edges={"r": ("item", "user", rng.integers(0, n_items, m),
                                       rng.integers(0, n_users, m))},
                          node_counts={"item": n_items, "user": n_users})
    cfg = _cfg(f"sampler.num_layers={layers}", f"sampler.num_neighbors={k}",
               f"sampler.multisage_num_neighbors={k}", f"sampler.batch_size={batch}",
               "sampler.validation_fraction=0.0")
    try:
        b = BatchBuilder(s, cfg, model=model)
        b.pairs
    except ConfigError:
        event("no training pairs")
        return  # no two items share a user: nothing to train on, said clearly
    mb = b.build(Ticket(0, b.num_batches(0) - 1, seed, hard))
    g = mb.graph
    assert len(g.node_sets) == layers + 1
    for j, block in enumerate(g.blocks):
        src, dst = g.node_sets[j], g.node_sets[j + 1]
        np.testing.assert_array_equal(src[:dst.size], dst)
        assert block.neighbor_index.min(initial=0) >= 0
        assert block.neighbor_index.max(initial=0) < max(src.size, 1)
        w = block.neighbor_weight.sum(axis=1)
        assert np.all((np.abs(w - 1) < 1e-5) | (w == 0))
        ids = np.where(block.neighbor_weight > 0, src[block.neighbor_index], -1)
        assert not (ids == dst[:, None]).any()  # no node is its own neighbour
    t = g.targets
    assert (t[mb.queries] != t[mb.positives]).all()
    assert mb.hard_negatives.shape == (mb.size, hard)


def test_a_store_file_changing_size_fails_the_next_batch_naming_the_file(tmp_path):
    """Checked (fstat) before each batch: a store file cut short under a
    producer is a StoreError naming it, not a SIGBUS inside a kernel."""
    from graphstore import StoreError
    rng = np.random.default_rng(4)
    s = build_from_arrays(tmp_path / "store",
                          edges={"rates": ("item", "user", rng.integers(0, 80, 600),
                                           rng.integers(0, 30, 600))},
                          node_counts={"item": 80, "user": 30})
    b = BatchBuilder(s, _cfg())
    b.build(Ticket(0, 0, 1, 0))
    rel = "edges/rates/reverse/indices.bin"
    with open(s.path / rel, "ab") as handle:  # grown, not truncated: no SIGBUS here
        handle.write(b"\0\0")
    with pytest.raises(StoreError, match=rf"{rel}: changed size from \d+ to \d+ bytes"):
        b.build(Ticket(0, 1, 1, 0))
    with pytest.raises(StoreError, match="changed size"):
        b.inference_batch(np.arange(4))


def test_walk_positives_build_batches_whose_pairs_come_from_the_walks(store):
    from sampler import pairs
    b = BatchBuilder(store, _cfg("sampler.positives=walks", "sampler.pairs_per_item=3",
                                 "sampler.positive_restart_prob=0.3"))
    q, p = pairs.walk_pairs(b.graph, 3, 0.3, b.cfg.positive_max_steps, b.cfg.seed)
    drawn_pairs = list(zip(q.tolist(), p.tolist()))
    drawn = set(drawn_pairs)
    t = b.pairs
    held = {(min(a, b), max(a, b)) for a, b in zip(t.val_queries.tolist(),
                                                   t.val_positives.tolist())}
    # walk_pairs never pairs an item with itself: every drawn pair is trained on
    # unless it (either way round) is held out
    assert len(t) == sum((min(a, b), max(a, b)) not in held for a, b in drawn_pairs)
    assert held and {(min(a, b), max(a, b)) for a, b in drawn} >= held
    assert set(zip(t.queries.tolist(), t.positives.tolist())) <= drawn
    batch = b.build(Ticket(0, 0, 11, 0))
    assert batch.queries.shape == (32,)


def test_hard_negatives_travel_with_their_logq_correction(store, builder):
    mb = builder.build(Ticket(0, 0, 5, 2))
    logq = mb.negative_logq
    assert logq.shape == (32, 20 + 2) and logq.dtype == np.float16
    assert (logq[:, 20:] > 0).all()           # a hard negative is always over-drawn
    assert (logq >= 0).all() and (logq[:, :20] == 0).any()
    back = MiniBatch.from_arrays(mb.to_arrays())
    np.testing.assert_array_equal(back.negative_logq, logq)
    assert builder.build(Ticket(0, 0, 5, 0)).negative_logq.shape == (32, 0)
    off = BatchBuilder(store, _cfg("sampler.hard_negative_correction=false")).build(
        Ticket(0, 0, 5, 2))
    assert off.negative_logq.shape == (32, 0)
    np.testing.assert_array_equal(off.hard_negatives, mb.hard_negatives)
    assert MiniBatch.from_arrays(off.to_arrays()).negative_logq is None
