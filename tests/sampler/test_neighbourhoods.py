"""PinSage / MultiSage neighbourhoods against a pure-Python replay of the
same walks, plus invariants, bans, edge cases and thread-count determinism."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sampler.neighbourhoods import multisage_neighbourhoods, pinsage_neighbourhoods, ranked_visits
from sampler.rng import walk_state
from sampler.walk_kernels import walk_block
from tests.sampler import reference as ref
from tests.sampler.conftest import random_graph, two_slot_graph

ARGS = dict(num_walks=6, walk_length=9, restart_prob=0.3, top_k=5, seed=42)


def _check_against_reference(g, seeds, bans=None, **args):
    got = ranked_visits(g, seeds, exclude=bans, track_context=True, **args)
    for i, s in enumerate(seeds):
        items, counts, ctxs = ref.neighbourhood(g, s, args["num_walks"], args["walk_length"],
                                                args["restart_prob"], args["top_k"],
                                                args["seed"], () if bans is None else bans[i])
        k = len(items)
        np.testing.assert_array_equal(got.items[i, :k], items)
        np.testing.assert_array_equal(got.counts[i, :k], counts)
        np.testing.assert_array_equal(got.context[i, :k], ctxs)
        assert (got.items[i, k:] == -1).all() and (got.counts[i, k:] == 0).all()


def test_matches_python_replay(graph):
    _check_against_reference(graph, np.arange(graph.num_items), **ARGS)


def test_matches_python_replay_with_two_context_types(multi_graph):
    _check_against_reference(multi_graph, np.arange(multi_graph.num_items), **ARGS)


def test_bans_match_replay_and_never_appear(graph):
    seeds = np.arange(20)
    bans = [np.array([(s + 1) % 58, (s + 2) % 58]) for s in seeds]
    _check_against_reference(graph, seeds, bans, **ARGS)
    nb = pinsage_neighbourhoods(graph, seeds, exclude=bans, **ARGS)
    for i, s in enumerate(seeds):
        assert not np.isin(nb.neighbors[i], bans[i]).any()


def test_invariants(graph):
    seeds = np.arange(graph.num_items)
    nb = pinsage_neighbourhoods(graph, seeds, **ARGS)
    valid = nb.neighbors >= 0
    assert (nb.neighbors[valid] < graph.num_items).all()
    assert not (nb.neighbors == seeds[:, None]).any()
    sums = nb.weights.sum(axis=1)
    np.testing.assert_allclose(sums[valid.any(axis=1)], 1.0, rtol=1e-6)
    assert (nb.weights[~valid] == 0).all()
    assert (np.diff(nb.weights, axis=1) <= 1e-7).all()  # best first


def test_isolated_seed_gets_an_empty_row(graph):
    nb = pinsage_neighbourhoods(graph, [graph.num_items - 1], **ARGS)
    assert (nb.neighbors == -1).all() and (nb.weights == 0).all()


def test_degree_one_seed_and_top_k_beyond_reachable():
    # item 0 - ctx 0 - item 1 is a component of two; item 2 sits alone on ctx 1.
    from tests.sampler.conftest import bipartite_slot
    from sampler.graph import WalkGraph
    g = WalkGraph.from_slots("item", 3, [bipartite_slot("r", 3, 2, [0, 1, 2], [0, 0, 1])], [1])
    nb = pinsage_neighbourhoods(g, [0, 1, 2], num_walks=4, walk_length=5, restart_prob=0.0,
                                top_k=10, seed=1)
    np.testing.assert_array_equal(nb.neighbors[0], [1] + [-1] * 9)
    np.testing.assert_array_equal(nb.neighbors[1], [0] + [-1] * 9)
    assert (nb.neighbors[2] == -1).all()  # only reaches itself
    np.testing.assert_allclose(nb.weights[:2, 0], 1.0)


def test_empty_seed_list(graph):
    nb = multisage_neighbourhoods(graph, np.empty(0, np.int64), num_walks=3, walk_length=4,
                                  seed=0)
    assert nb.neighbors.shape == (0, 20) and nb.context.shape == (0, 20)


def test_same_result_for_any_thread_count():
    g = random_graph(num_items=3000, num_ctx=300, m=20000, seed=5)
    seeds = np.random.default_rng(0).integers(0, 2998, 4000)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = multisage_neighbourhoods(g, seeds, num_walks=10, walk_length=20, seed=3)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = multisage_neighbourhoods(g, seeds, num_walks=10, walk_length=20, seed=3)
    finally:
        numba.set_num_threads(before)
    for name in ("neighbors", "weights", "context_type", "context"):
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name))


def test_multisage_context_is_a_context_of_both_ends(multi_graph):
    nb = multisage_neighbourhoods(multi_graph, np.arange(38), num_walks=20, walk_length=10,
                                  seed=7)
    names = multi_graph.context_types
    for i in range(38):
        for v, t, c in zip(nb.neighbors[i], nb.context_type[i], nb.context[i]):
            if v < 0:
                assert t == -1 and c == -1
                continue
            slot = list(multi_graph.edge_types).index({"user": "rates", "tag": "tagged"}[names[t]])
            g = c + multi_graph.ctx_offsets[slot]
            members = multi_graph.ctx_item[multi_graph.ctx_ptr[g]:multi_graph.ctx_ptr[g + 1]]
            assert v in members  # the neighbour was reached through this context


def _one_step(g, start, n, seed):
    """Run the kernel's walk_block directly: n walks of one step from `start`."""
    origin = np.full(n, start, np.int64)
    state = np.array([walk_state(seed, start, w) for w in range(n)], np.uint64)
    trace, trace_ctx = np.empty((n, 1), np.int64), np.empty((n, 1), np.int64)
    walk_block(g.item_ptr, g.item_ctx, g.ctx_ptr, g.ctx_item, g.type_cum, origin, n, 1, 0.0,
               origin.copy(), np.empty(n, np.int64), np.empty(n, np.int64), state, trace,
               trace_ctx)
    return trace[:, 0], trace_ctx[:, 0]


def test_slot_choice_follows_context_weights(multi_graph):
    """Items with edges in both slots step into 'rates' with probability 3/4."""
    g = multi_graph
    deg = np.diff(g.item_ptr).reshape(g.num_items, 2)
    both = int(np.flatnonzero((deg > 0).all(axis=1))[0])
    _, ctx = _one_step(g, both, 8000, seed=123)
    slot = (ctx >= g.ctx_offsets[1]).astype(int)
    assert ref.chi2_pvalue(np.bincount(slot, minlength=2), [0.75, 0.25]) > 1e-3


def test_visit_frequencies_match_exact_two_step_probabilities():
    """One step from a seed: P(item) = sum over its contexts c of 1/deg(seed) * 1/deg(c)."""
    g = random_graph(num_items=30, num_ctx=6, m=60, seed=9, isolated=0)
    start = int(np.argmax(np.diff(g.item_ptr)))
    reached, _ = _one_step(g, start, 20000, seed=77)
    assert list(reached[:100]) == [ref.graph_walk(g, start, w, 1, 0.0, 77)[0][0]
                                   for w in range(100)]
    probs = np.zeros(g.num_items)
    ctxs = g.item_ctx[g.item_ptr[start]:g.item_ptr[start + 1]]
    for c in ctxs:
        members = g.ctx_item[g.ctx_ptr[c]:g.ctx_ptr[c + 1]]
        probs[members] += 1.0 / len(ctxs) / len(members)
    observed = np.bincount(reached, minlength=g.num_items)
    keep = probs > 0
    assert observed[~keep].sum() == 0
    assert ref.chi2_pvalue(observed[keep], probs[keep]) > 1e-3
    # the neighbourhood ranks exactly these visit counts (the seed itself excluded)
    nb = ranked_visits(g, [start], num_walks=20000, walk_length=1, restart_prob=0.0,
                       top_k=g.num_items, seed=77)
    counts = dict(zip(nb.items[0][nb.counts[0] > 0], nb.counts[0][nb.counts[0] > 0]))
    assert counts == {v: observed[v] for v in np.flatnonzero(observed) if v != start}


def test_rejects_bad_arguments(graph):
    with pytest.raises(ValueError, match="not a dense item id"):
        pinsage_neighbourhoods(graph, [graph.num_items], **ARGS)
    with pytest.raises(ValueError, match="top_k: must be a positive integer"):
        pinsage_neighbourhoods(graph, [0], **{**ARGS, "top_k": 0})
    with pytest.raises(ValueError, match="restart_prob"):
        pinsage_neighbourhoods(graph, [0], **{**ARGS, "restart_prob": 1.5})
    with pytest.raises(ValueError, match="one entry per seed"):
        pinsage_neighbourhoods(graph, [0, 1], exclude=[[2]], **ARGS)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32), walks=st.integers(1, 5), length=st.integers(1, 6),
       top_k=st.integers(1, 8), restart=st.sampled_from([0.0, 0.5, 1.0]),
       graph_seed=st.integers(0, 50))
def test_random_inputs_match_replay(seed, walks, length, top_k, restart, graph_seed):
    g = two_slot_graph(graph_seed) if graph_seed % 2 else random_graph(seed=graph_seed)
    _check_against_reference(g, np.arange(0, g.num_items, 3), num_walks=walks,
                             walk_length=length, restart_prob=restart, top_k=top_k, seed=seed)


def test_corrupt_graph_is_reported_not_read_out_of_bounds(graph):
    from dataclasses import replace
    bad = replace(graph, ctx_item=np.full_like(graph.ctx_item, graph.num_items + 5))
    with pytest.raises(ValueError, match="CSR arrays are corrupt"):
        pinsage_neighbourhoods(bad, [0, 1], **ARGS)
    bad = replace(graph, item_ctx=np.full_like(graph.item_ctx, 10_000))
    with pytest.raises(ValueError, match="CSR arrays are corrupt"):
        pinsage_neighbourhoods(bad, [0, 1], **ARGS)
