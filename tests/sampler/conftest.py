"""Small graphs for the sampler tests: built with numpy (WalkGraph.from_slots)
and, where the store matters, with graphstore.build_from_arrays."""

from __future__ import annotations

import numpy as np
import pytest

from sampler.graph import Slot, WalkGraph
from tests.sampler.reference import csr


def bipartite_slot(name, num_items, num_ctx, items, ctxs, ctx_type="user"):
    items, ctxs = np.asarray(items), np.asarray(ctxs)
    return Slot(name, ctx_type, num_ctx, csr(num_items, items, ctxs.astype(np.uint32)),
                csr(num_ctx, ctxs, items.astype(np.uint32)))


def random_graph(num_items=60, num_ctx=15, m=200, seed=0, isolated=2):
    """Items 0..num_items-isolated-1 have edges; the last `isolated` have none."""
    rng = np.random.default_rng(seed)
    items = rng.integers(0, num_items - isolated, m)
    ctxs = rng.integers(0, num_ctx, m)
    pairs = np.unique(np.stack([items, ctxs], 1), axis=0)
    return WalkGraph.from_slots("item", num_items,
                                [bipartite_slot("rates", num_items, num_ctx, *pairs.T)], [1.0])


def two_slot_graph(seed=1):
    rng = np.random.default_rng(seed)
    n = 40
    a = np.unique(np.stack([rng.integers(0, 30, 120), rng.integers(0, 10, 120)], 1), axis=0)
    b = np.unique(np.stack([rng.integers(10, 40, 90), rng.integers(0, 6, 90)], 1), axis=0)
    return WalkGraph.from_slots("item", n, [bipartite_slot("rates", n, 10, *a.T, "user"),
                                            bipartite_slot("tagged", n, 6, *b.T, "tag")],
                                [3.0, 1.0])


@pytest.fixture
def graph():
    return random_graph()


@pytest.fixture
def multi_graph():
    return two_slot_graph()
