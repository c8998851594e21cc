"""WalkGraph: slots from the store's edge types, zero-copy in the one-slot
case, interleaved (and checked entry by entry) with several."""

from __future__ import annotations

import numpy as np
import pytest

from graphstore import build_from_arrays
from sagewalk.errors import ConfigError
from sampler.graph import WalkGraph


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rng = np.random.default_rng(0)
    return build_from_arrays(
        tmp_path_factory.mktemp("g") / "store",
        edges={"rates": ("item", "user", rng.integers(0, 50, 300), rng.integers(0, 20, 300)),
               "tags": ("tag", "item", rng.integers(0, 8, 90), rng.integers(0, 50, 90)),
               "similar": ("item", "item", rng.integers(0, 50, 40), rng.integers(0, 50, 40)),
               "follows": ("user", "user", rng.integers(0, 20, 10), rng.integers(0, 20, 10))},
        node_counts={"item": 52, "user": 20, "tag": 8})


def test_one_slot_uses_the_store_arrays_without_copying(store):
    g = WalkGraph.from_store(store, "item", {"rates": 1.0})
    assert g.item_ptr is store.csr("rates").indptr
    assert g.ctx_item is store.csr("rates", reverse=True).indices
    assert g.context_types == ("user",) and g.num_items == 52


def test_item_on_the_destination_side_walks_the_reverse_csr(store):
    g = WalkGraph.from_store(store, "item", {"tags": 1.0})
    assert g.item_ptr is store.csr("tags", reverse=True).indptr
    assert g.context_types == ("tag",)


def test_several_slots_are_interleaved_exactly(store):
    g = WalkGraph.from_store(store, "item", {})
    assert g.edge_types == ("rates", "similar", "tags")  # the store's order
    assert g.context_types == ("user", "item", "tag")
    sides = [store.csr("rates"), store.csr("similar"), store.csr("tags", reverse=True)]
    for item in range(g.num_items):
        for t, side in enumerate(sides):
            row = g.item_ctx[g.item_ptr[item * 3 + t]:g.item_ptr[item * 3 + t + 1]]
            np.testing.assert_array_equal(row, side.neighbors(item) + g.ctx_offsets[t])
    for t, (name, rev) in [(0, ("rates", True)), (2, ("tags", False))]:
        other = store.csr(name, reverse=rev)
        for c in range(other.num_rows):
            gid = c + g.ctx_offsets[t]
            np.testing.assert_array_equal(g.ctx_item[g.ctx_ptr[gid]:g.ctx_ptr[gid + 1]],
                                          other.neighbors(c))
    # item-item: the context of a step is the neighbour item itself
    gid = 7 + g.ctx_offsets[1]
    np.testing.assert_array_equal(g.ctx_item[g.ctx_ptr[gid]:g.ctx_ptr[gid + 1]], [7])
    np.testing.assert_allclose(g.type_cum, [1 / 3, 2 / 3, 1.0])
    deg = sum(np.diff(s.indptr) for s in sides)
    np.testing.assert_array_equal(g.degrees(), deg)


def test_context_of_maps_global_ids_back(store):
    g = WalkGraph.from_store(store, "item", {"rates": 2.0, "tags": 1.0})
    assert g.edge_types == ("rates", "tags")
    types, ids = g.context_of(np.array([0, 19, 20, 27, -1]))
    np.testing.assert_array_equal(types, [0, 0, 1, 1, -1])
    np.testing.assert_array_equal(ids, [0, 19, 0, 7, -1])


@pytest.mark.parametrize("weights, message", [
    ({"follows": 1.0}, "'follows' is not an edge type touching 'item'"),
    ({"nope": 1.0}, "'nope' is not an edge type"),
    ({"rates": 0.0}, "no edge type touching 'item' has a positive weight"),
    ({"rates": -1.0}, "must be >= 0"),
])
def test_bad_context_weights_say_what_to_fix(store, weights, message):
    with pytest.raises(ConfigError, match=message):
        WalkGraph.from_store(store, "item", weights)


def test_unknown_item_type(store):
    with pytest.raises(ConfigError, match="sampler.item_type: 'film' is not a node type"):
        WalkGraph.from_store(store, "film", {})
