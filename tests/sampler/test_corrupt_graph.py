"""Every kernel that indexes by stored ids reports an id outside the graph as
a status, and its wrapper raises CorruptGraphError (a StoreError: the CLI
prints it, exit 2) instead of reading out of bounds."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphstore import StoreError
from sampler.graph import CorruptGraphError, Slot, WalkGraph
from sampler.neighbourhoods import pinsage_neighbourhoods
from sampler.pairs import cooccurrence_pairs
from tests.sampler.conftest import bipartite_slot, random_graph, two_slot_graph

ARGS = dict(num_walks=4, walk_length=5, restart_prob=0.0, top_k=3, seed=1)


def _all_items(g):
    return np.arange(g.num_items)


@pytest.mark.parametrize("field, value", [("item_ctx", 10_000), ("ctx_item", 10_000)])
def test_cooccurrence_pairs_report_an_id_outside_the_graph(field, value):
    g = random_graph()
    bad = replace(g, **{field: np.full_like(getattr(g, field), value)}, source="/data/store")
    with pytest.raises(CorruptGraphError) as err:
        cooccurrence_pairs(bad, 2, seed=0)
    text = str(err.value)
    assert text.startswith("/data/store: drawing co-occurrence positives: the store's CSR "
                           "arrays are corrupt")
    assert "rates" in text and "sagewalk store verify" in text and "sagewalk ingest" in text
    assert isinstance(err.value, StoreError)


def test_cooccurrence_pairs_report_an_offset_outside_the_edges():
    g = random_graph()
    ptr = np.asarray(g.ctx_ptr).copy()
    ptr[3] = ptr[-1] + 50  # context 2's row now runs past ctx_item's end
    with pytest.raises(CorruptGraphError):
        cooccurrence_pairs(replace(g, ctx_ptr=ptr), 4, seed=0)


def test_negative_int64_ids_are_reported_not_walked_as_dead_ends():
    g = random_graph()
    bad = replace(g, item_ctx=np.full(g.item_ctx.shape, -2, np.int64))
    with pytest.raises(CorruptGraphError):
        cooccurrence_pairs(bad, 2, seed=0)
    with pytest.raises(CorruptGraphError, match="walks from 58 item seeds"):
        pinsage_neighbourhoods(bad, _all_items(g)[:58], **ARGS)
    bad = replace(g, ctx_item=np.full(g.ctx_item.shape, -7, np.int64))
    with pytest.raises(CorruptGraphError):
        pinsage_neighbourhoods(bad, _all_items(g), **ARGS)


def test_an_id_too_large_for_its_slot_cannot_alias_the_next_slot():
    """With several slots the ids become global (offset per slot): context 12
    of a 10-context slot would silently be context 2 of the next one."""
    n = 40
    good = two_slot_graph()
    s0 = bipartite_slot("rates", n, 10, [0, 1, 2], [0, 1, 2], "user")
    ip, ix = s0.item_side
    ix = ix.copy()
    ix[1] = 12
    s0 = Slot("rates", "user", 10, (ip, ix), s0.context_side)
    s1 = bipartite_slot("tagged", n, 6, [3, 4], [0, 1], "tag")
    with pytest.raises(CorruptGraphError, match=r"edge type 'rates': an item-side id is not "
                                                r"a dense user id \(expected 0\.\.9\)"):
        WalkGraph.from_slots("item", n, [s0, s1], [1.0, 1.0], source="/data/store")
    assert good.num_slots == 2


@settings(max_examples=25, deadline=None)
@given(graph_seed=st.integers(0, 30), field=st.sampled_from(["item_ctx", "ctx_item"]),
       where=st.integers(0, 10**6), excess=st.integers(0, 1000))
def test_one_bad_id_anywhere_is_an_error_or_never_reached(graph_seed, field, where, excess):
    g = two_slot_graph(graph_seed) if graph_seed % 2 else random_graph(seed=graph_seed)
    array = np.asarray(getattr(g, field)).astype(np.int64)
    limit = g.ctx_offsets[-1] if field == "item_ctx" else g.num_items
    array[where % array.size] = limit + excess
    bad = replace(g, **{field: array})
    try:  # every item walks, so in practice the bad entry is almost always reached
        q, p = cooccurrence_pairs(bad, 3, seed=graph_seed)
    except CorruptGraphError:
        return
    assert q.size and p.max() < g.num_items and p.min() >= 0
