"""Plain walks: the interleaved kernel equals the one-at-a-time kernel and a
pure-Python replay; steps are uniform among out-edges (chi-square)."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sampler.walks import missing_pages, paged_random_walks, random_walks, will_need
from tests.sampler.reference import chi2_pvalue, csr, plain_walk


def _graph(n=40, m=160, seed=0):
    rng = np.random.default_rng(seed)
    src, dst = rng.integers(0, n, m), rng.integers(0, n, m)
    src[:3] = 0  # node 0 has several edges; the last node is isolated
    src, dst = src[src != n - 1], dst[src != n - 1]
    return csr(n, src, dst.astype(np.uint32))


def test_matches_python_replay_and_baseline():
    indptr, indices = _graph()
    starts = np.arange(40).repeat(3)
    fast = random_walks(indptr, indices, starts, 12, seed=5, block=7)
    slow = random_walks(indptr, indices, starts, 12, seed=5, interleave=False)
    ref = np.array([plain_walk(indptr, indices, s, 12, 5, w) for w, s in enumerate(starts)])
    np.testing.assert_array_equal(fast, ref)
    np.testing.assert_array_equal(slow, ref)


def test_dead_end_and_isolated_node_stay_put():
    indptr, indices = _graph()
    walks = random_walks(indptr, indices, np.array([39, 39]), 5, seed=1)
    assert (walks == 39).all()


def test_same_walks_for_any_thread_count_and_block():
    indptr, indices = _graph(n=500, m=3000, seed=3)
    starts = np.random.default_rng(1).integers(0, 499, 5000)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = random_walks(indptr, indices, starts, 8, seed=9, block=64)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = random_walks(indptr, indices, starts, 8, seed=9, block=1000)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one, two)


def test_steps_are_uniform_among_out_edges():
    indptr = np.array([0, 4, 5, 6, 7, 8], np.int64)
    indices = np.array([1, 2, 3, 4, 0, 0, 0, 0], np.uint32)
    walks = random_walks(indptr, indices, np.zeros(40_000, np.int64), 1, seed=11)
    observed = np.bincount(walks[:, 1], minlength=5)[1:]
    assert chi2_pvalue(observed, [0.25] * 4) > 1e-3


def test_rejects_bad_inputs():
    indptr, indices = _graph()
    with pytest.raises(ValueError, match="start node 40 is outside"):
        random_walks(indptr, indices, np.array([40]), 3, seed=0)
    with pytest.raises(ValueError, match="do not belong together"):
        random_walks(indptr, indices[:-1], np.array([0]), 3, seed=0)
    corrupt = indices.copy()
    corrupt[:] = 10_000
    with pytest.raises(ValueError, match="CSR is corrupt"):
        random_walks(indptr, corrupt, np.arange(10), 3, seed=0)


def test_empty_start_list():
    indptr, indices = _graph()
    assert random_walks(indptr, indices, np.empty(0, np.int64), 4, seed=0).shape == (0, 5)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 30), m=st.integers(0, 80), length=st.integers(0, 6),
       seed=st.integers(-2**63, 2**64 - 1), data=st.data())
def test_random_graphs_match_replay(n, m, length, seed, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    indptr, indices = csr(n, rng.integers(0, n, m), rng.integers(0, n, m).astype(np.int64))
    starts = rng.integers(0, n, 6)
    got = random_walks(indptr, indices, starts, length, seed=seed, block=4)
    ref = [plain_walk(indptr, indices, s, length, seed % 2**64, w) for w, s in enumerate(starts)]
    np.testing.assert_array_equal(got, np.array(ref).reshape(got.shape))


def test_paged_walks_on_memmapped_files_equal_in_memory_walks(tmp_path):
    indptr, indices = _graph(n=500, m=4000, seed=7)
    indptr.tofile(tmp_path / "indptr.bin")
    indices.tofile(tmp_path / "indices.bin")
    mp = np.memmap(tmp_path / "indptr.bin", np.int64, "r")
    mi = np.memmap(tmp_path / "indices.bin", indices.dtype, "r")
    starts = np.random.default_rng(3).integers(0, 499, 300)
    expected = random_walks(indptr, indices, starts, 6, seed=4)
    np.testing.assert_array_equal(paged_random_walks(mp, mi, starts, 6, seed=4, block=64),
                                  expected)
    np.testing.assert_array_equal(paged_random_walks(indptr, indices, starts, 6, seed=4),
                                  expected)  # plain arrays: no madvise, same walks


def test_will_need_coalesces_pages(tmp_path):
    np.zeros(5 * 4096, np.uint8).tofile(tmp_path / "a.bin")
    a = np.memmap(tmp_path / "a.bin", np.uint8, "r")
    assert will_need(a, np.array([0, 10, 4096, 4097, 3 * 4096])) == 2  # pages 0-1, 3
    assert will_need(np.zeros(10), np.array([1])) == 0


def test_will_need_advises_pages_not_in_memory_and_skips_cached_ones(tmp_path):
    path = tmp_path / "sparse.bin"
    with open(path, "wb") as f:
        f.truncate(64 << 20)                         # a hole: no page of it is cached
    a = np.memmap(path, np.int32, "r")
    every_other_page = np.arange(0, a.size, 2 * 4096 // a.itemsize)   # 8192 runs
    assert missing_pages(a.ctypes.data, np.arange(0, 16384, 2), 4096) == 8192
    assert will_need(a, every_other_page) == every_other_page.size   # one call a page
    assert int(a[every_other_page].sum()) == 0        # read: now cached
    assert missing_pages(a.ctypes.data, np.arange(0, 16384, 2), 4096) == 0
    assert will_need(a, every_other_page) == 0        # all cached: no calls at all
