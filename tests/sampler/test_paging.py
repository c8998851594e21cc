"""sampler/paging.py: paged neighbourhood walks equal the in-memory kernel's."""

import dataclasses
import importlib
from pathlib import Path

import numpy as np
import pytest

from sampler.graph import Slot, WalkGraph
from sampler.neighbourhoods import multisage_neighbourhoods, pinsage_neighbourhoods

paging = importlib.import_module("sampler.paging")


def memmapped_graph(tmp_path, items=500, ctxs=300, edges=4000, seed=0):
    rng = np.random.default_rng(seed)
    i = rng.integers(0, items, edges)
    c = rng.integers(0, ctxs, edges)

    def csr(rows, cols, n):
        order = np.lexsort((cols, rows))
        ptr = np.zeros(n + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=n), out=ptr[1:])
        return ptr, cols[order].astype(np.uint32)

    arrays = {}
    for name, a in zip(("ip", "ic", "cp", "ci"), (*csr(i, c, items), *csr(c, i, ctxs))):
        path = tmp_path / f"{name}.bin"
        a.tofile(path)
        arrays[name] = np.memmap(path, a.dtype, "r", shape=a.shape)
    slot = Slot("e", "ctx", ctxs, (arrays["ip"], arrays["ic"]), (arrays["cp"], arrays["ci"]))
    return WalkGraph.from_slots("item", items, [slot], [1.0])


def walk_files(graph):
    return sorted({str(Path(a.filename)) for a in (graph.item_ptr, graph.item_ctx,
                                                   graph.ctx_ptr, graph.ctx_item)})


@pytest.mark.parametrize("walks", [pinsage_neighbourhoods, multisage_neighbourhoods])
def test_paged_walks_give_the_in_memory_neighbourhoods(tmp_path, monkeypatch, walks):
    graph = memmapped_graph(tmp_path)
    paged = dataclasses.replace(graph, paged=True)
    seeds = np.random.default_rng(1).integers(0, graph.num_items, 700)   # repeats, unsorted
    exclude = [np.array([(s + 1) % graph.num_items]) for s in seeds]
    monkeypatch.setattr(paging, "SEEDS_PER_BLOCK", 64)    # many blocks, a short last one
    args = dict(num_walks=6, walk_length=5, restart_prob=0.2, top_k=8, seed=3, exclude=exclude)
    a, b = walks(graph, seeds, **args), walks(paged, seeds, **args)
    for field in dataclasses.fields(a):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if x is not None:
            np.testing.assert_array_equal(x, y, err_msg=field.name)


def test_auto_pages_only_mapped_graphs_bigger_than_half_the_memory(tmp_path):
    graph = memmapped_graph(tmp_path)
    size = paging.walk_bytes(graph)
    assert paging.should_page(graph, "auto", limit=size)            # > half the limit
    assert not paging.should_page(graph, "auto", limit=4 * size)
    in_memory = dataclasses.replace(graph, item_ctx=np.array(graph.item_ctx))
    assert not paging.should_page(in_memory, "auto", limit=size)
    assert paging.should_page(in_memory, "on") and not paging.should_page(graph, "off")
    assert paging.memory_limit() > 0


def run(choice, seconds_per_step, seeds=1000, steps=1):
    """One call as ranked_visits makes it: ask for the plan, then run and
    record each slice at the kernels' seconds per walk step.  Returns the
    kernel that ran the most seeds and the plan."""
    plan = choice.plan(seeds, steps)
    assert sum(count for _, count in plan) == seeds
    for paged, count in plan:
        choice.record(paged, count * steps, count * steps * seconds_per_step[paged])
    return max(plan, key=lambda part: part[1])[0], plan


def test_walk_choice_probes_plain_on_a_slice_then_runs_the_faster_and_keeps_checking():
    choice = paging.WalkChoice()
    slow_paged = {True: 2e-5, False: 1e-5}        # plain twice as fast
    probes = [run(choice, slow_paged)[1] for _ in range(choice.PROBES + 1)]
    # each call measures plain on a slice and walks the rest paged; each kernel's
    # first call is unmeasured
    assert all(plan == [(False, 500), (True, 500)] for plan in probes)
    assert choice.best is False
    assert choice.rate(False) == pytest.approx(2 * choice.rate(True))
    after = [run(choice, slow_paged)[1] for _ in range(8 * choice.EXPLORE_EVERY)]
    explored = [plan for plan in after if len(plan) == 2]
    # paged is 2x slower: tried once in 2 x EXPLORE_EVERY calls, on half the call
    assert 3 <= len(explored) <= 4
    assert all(plan == [(True, 500), (False, 500)] for plan in explored)
    assert all(plan == [(False, 1000)] for plan in after if len(plan) == 1)
    # the cache empties: paged becomes 4x faster; the explored calls see it and turn the choice
    cold = {True: 5e-6, False: 2e-5}
    turned = [run(choice, cold)[0] for _ in range(2 * choice.EXPLORE_EVERY + 1)]
    assert choice.best is True         # the first exploring call turns it
    turned = [run(choice, cold)[1] for _ in range(choice.WINDOW * choice.EXPLORE_EVERY)]
    tail = turned[-4 * choice.EXPLORE_EVERY:]      # plain 4x slower: tried once in 64 calls
    assert 1 <= sum(len(plan) == 2 for plan in tail) <= 2


def test_a_kernel_on_trial_walks_a_bounded_slice_of_a_big_call():
    # A minibatch's walks on a cold store: plain would take minutes for the
    # whole call; it is measured on PROBE_STEPS steps and the rest runs paged.
    choice = paging.WalkChoice()
    cold = {True: 1e-5, False: 3e-4}                # 100k and 3.3k steps/s
    seeds, steps = 20_000, 100
    part = choice.PROBE_STEPS // steps
    plans = [run(choice, cold, seeds, steps)[1] for _ in range(choice.PROBES + 1)]
    assert plans == [[(False, part), (True, seeds - part)]] * (choice.PROBES + 1)
    assert choice.best is True
    plain_seconds = sum(count * steps * cold[paged] for plan in plans
                        for paged, count in plan if not paged)
    assert plain_seconds == pytest.approx((choice.PROBES + 1) * part * steps * 3e-4)
    # a call smaller than the slice is split in half; one seed runs whole, alternating
    fresh = paging.WalkChoice()
    assert fresh.plan(10, steps) == [(False, 5), (True, 5)]
    fresh.record(False, 5 * steps, 1.0)
    fresh.record(True, 5 * steps, 1.0)
    assert fresh.plan(1, steps) in ([(False, 1)], [(True, 1)])
    fresh.record(True, steps, 1.0)
    assert fresh.plan(1, steps) == [(False, 1)]    # plain has run fewer calls


def test_walk_choice_forgets_probes_made_on_a_colder_cache():
    # A cap that fits most of the CSR: plain's probes pay the cold reads (and
    # warm the cache), so the probes pick paged; plain is then 5x faster warm.
    choice = paging.WalkChoice()
    cold = {True: 2e-6, False: 1e-5}
    for _ in range(choice.PROBES + 1):
        run(choice, cold)
    assert choice.best is True
    warm = {True: 2e-6, False: 4e-7}
    gap = choice.rate(True) / choice.rate(False)          # 5: explored once in 80 calls
    calls = [run(choice, warm)[1] for _ in range(int(choice.EXPLORE_EVERY * gap))]
    assert calls[-1] == [(False, 500), (True, 500)]
    assert choice.best is False                            # one warm plain slice turns it
    assert choice.rate(False) == pytest.approx(1 / 4e-7)   # the cold probes are forgotten
    assert run(choice, warm)[1] == [(False, 1000)]


@pytest.mark.parametrize("probe_steps", [60, 1 << 14])   # a 2-seed slice, half the call
def test_auto_measures_both_kernels_and_gives_the_same_neighbourhoods(tmp_path, monkeypatch,
                                                                      probe_steps):
    monkeypatch.setattr(paging.WalkChoice, "PROBE_STEPS", probe_steps)
    graph = memmapped_graph(tmp_path)
    auto = paging.prepare(graph, "auto", 0, limit=paging.walk_bytes(graph))
    assert auto.paged and isinstance(auto.choice, paging.WalkChoice)
    assert paging.prepare(graph, "on", 0).choice is None
    assert paging.prepare(graph, "auto", 0, limit=4 * paging.walk_bytes(graph)) is graph
    seeds = np.random.default_rng(2).integers(0, graph.num_items, 300)
    # bans of uneven lengths, so each slice's rows must be cut from the right place
    exclude = [(np.arange(s % 3) + s + 1) % graph.num_items for s in seeds]
    args = dict(num_walks=6, walk_length=5, restart_prob=0.2, top_k=8, exclude=exclude)
    for call in range(2 * (auto.choice.PROBES + 1) + 3):
        a = pinsage_neighbourhoods(graph, seeds, seed=call, **args)
        b = pinsage_neighbourhoods(auto, seeds, seed=call, **args)
        np.testing.assert_array_equal(a.neighbors, b.neighbors)
        np.testing.assert_array_equal(a.weights, b.weights)
        assert not any(np.isin(row, ban).any() for row, ban in zip(b.neighbors, exclude))
    assert auto.choice.rate(True) > 0 and auto.choice.rate(False) > 0
    assert auto.choice.best is not None


def test_auto_advises_the_arrays_for_the_kernel_it_runs(tmp_path, vm_flags):
    # paged: random access; plain: Linux's read-around, which fills the cache
    # of a store that fits it (docs/sampler.md)
    graph = memmapped_graph(tmp_path)
    files = walk_files(graph)
    auto = paging.prepare(graph, "auto", 0, limit=paging.walk_bytes(graph))
    assert all("rr" in vm_flags(f) for f in files)
    auto.choice.advise(auto, False)
    assert not any("rr" in vm_flags(f) for f in files)
    auto.choice.advise(auto, True)
    assert all("rr" in vm_flags(f) for f in files)
    # a probing call ends on the paged slice: the arrays are left random-access
    seeds = np.arange(40)
    pinsage_neighbourhoods(auto, seeds, num_walks=2, walk_length=2, restart_prob=0.0,
                           top_k=4, seed=0)
    assert all("rr" in vm_flags(f) for f in files)
    assert auto.choice.calls_run == {True: 1, False: 1}


def test_resident_rows_locks_the_offsets_then_the_busiest_contexts(tmp_path):
    graph = memmapped_graph(tmp_path)
    assert paging.resident_rows(graph, 0) == 0
    locked = paging.resident_rows(graph, 64 << 10)
    assert 0 < locked <= 64 << 10
    prepared = paging.prepare(graph, "on", 0)
    assert prepared.paged and not graph.paged


def test_prepare_marks_the_walk_arrays_random_access_only_when_paging(tmp_path, vm_flags):
    # without MADV_RANDOM a fault reads up to read_ahead_kb around its page,
    # which evicts the cache a capped store depends on (graphstore/pages.py)
    graph = memmapped_graph(tmp_path)
    files = walk_files(graph)
    paging.prepare(graph, "off", 0)
    assert not any("rr" in vm_flags(f) for f in files)
    paging.prepare(graph, "on", 0)
    assert all("rr" in vm_flags(f) for f in files)
