"""Computation graphs: prefix-ordered distinct node sets, and blocks that
reproduce each destination's sampled neighbourhood exactly."""

from __future__ import annotations

import numpy as np
import pytest

from sampler import compgraph
from sampler.neighbourhoods import multisage_neighbourhoods, pinsage_neighbourhoods
from tests.sampler.conftest import random_graph, two_slot_graph

WALKS = dict(num_walks=5, walk_length=6, restart_prob=0.2, top_k=4, seed=3)


def _pinsage(g):
    return lambda nodes, ptr, items: pinsage_neighbourhoods(g, nodes, exclude_csr=(ptr, items),
                                                            **WALKS)


def _multisage(g):
    return lambda nodes, ptr, items: multisage_neighbourhoods(
        g, nodes, exclude_csr=(ptr, items), num_walks=5, walk_length=6, top_k=4, seed=3)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_node_sets_are_distinct_prefixes_and_blocks_match_neighbourhoods(layers):
    g = random_graph()
    targets = np.array([5, 1, 9, 30, 59])  # 59 is isolated
    cg = compgraph.build(targets, layers, _pinsage(g))
    assert len(cg.node_sets) == layers + 1 and len(cg.blocks) == layers
    np.testing.assert_array_equal(cg.targets, targets)
    for k in range(layers):
        big, small = cg.node_sets[k], cg.node_sets[k + 1]
        assert np.unique(big).size == big.size
        np.testing.assert_array_equal(big[:small.size], small)
        block = cg.blocks[k]
        assert block.num_dst == small.size
        assert block.neighbor_index.dtype == np.int32 and block.neighbor_weight.dtype == np.float32
        nb = pinsage_neighbourhoods(g, small, **WALKS)
        valid = nb.neighbors >= 0
        np.testing.assert_array_equal(big[block.neighbor_index][valid], nb.neighbors[valid])
        np.testing.assert_array_equal(block.neighbor_weight, nb.weights)
        assert (block.neighbor_index[~valid] == 0).all()
    assert (cg.blocks[-1].neighbor_weight[-1] == 0).all()  # the isolated target
    assert cg.context_ids is None and cg.blocks[0].context_index is None


def test_target_bans_apply_wherever_the_target_is_a_destination():
    g = random_graph()
    targets = np.array([0, 1, 2, 3])
    plain = pinsage_neighbourhoods(g, targets, **WALKS)
    banned = plain.neighbors[:, 0]  # each target's favourite neighbour
    ptr = np.arange(5, dtype=np.int64)
    cg = compgraph.build(targets, 2, _pinsage(g), (ptr, banned))
    for k in range(2):
        ids = cg.node_sets[k][cg.blocks[k].neighbor_index[:4]]
        ids = np.where(cg.blocks[k].neighbor_weight[:4] > 0, ids, -1)
        assert not (ids == banned[:, None]).any()


def test_multisage_context_arrays():
    g = two_slot_graph()
    targets = np.arange(0, 38, 4)
    cg = compgraph.build(targets, 2, _multisage(g), context_types=2)
    assert cg.context_types.dtype == np.int16 and cg.context_ids.dtype == np.int64
    keys = set(zip(cg.context_types.tolist(), cg.context_ids.tolist()))
    assert len(keys) == cg.context_ids.size  # distinct (type, id) pairs
    for k in range(2):
        dst = cg.node_sets[k + 1]
        nb = multisage_neighbourhoods(g, dst, num_walks=5, walk_length=6, top_k=4, seed=3)
        index = cg.blocks[k].context_index
        valid = nb.neighbors >= 0
        assert (index[~valid] == -1).all()
        np.testing.assert_array_equal(cg.context_types[index[valid]], nb.context_type[valid])
        np.testing.assert_array_equal(cg.context_ids[index[valid]], nb.context[valid])


def test_empty_targets_and_duplicates():
    g = random_graph()
    cg = compgraph.build(np.empty(0, np.int64), 2, _pinsage(g))
    assert [s.size for s in cg.node_sets] == [0, 0, 0]
    assert cg.blocks[0].neighbor_index.shape == (0, 4)
    with pytest.raises(ValueError, match="distinct"):
        compgraph.build(np.array([1, 1]), 2, _pinsage(g))
