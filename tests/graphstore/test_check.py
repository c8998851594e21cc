"""A store file edited in place (same size) or changed under a mapping: the
structural checks name the file and the fix instead of a kernel reading out
of bounds (graphstore/check.py, Store.check_files)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphstore import StoreError, build_from_arrays, open_store
from graphstore.check import check_csr, check_ids, check_offsets
from graphstore.info import store_info


@pytest.fixture()
def store(tmp_path):
    rng = np.random.default_rng(3)
    return build_from_arrays(
        tmp_path / "store",
        edges={"rates": ("item", "user", rng.integers(0, 20, 80), rng.integers(0, 30, 80))},
        node_counts={"item": 20, "user": 30},
        ids={"item": [f"i{k}" for k in range(20)]})


def poke(store, rel: str, index: int, value) -> None:
    """Overwrite one element of a store file in place: same size, new content."""
    entry_dtype = {"indptr.bin": np.int64}.get(os.path.basename(rel))
    array = np.memmap(store.path / rel, mode="r+", dtype=entry_dtype or _dtype(store, rel))
    array[index] = value
    array.flush()
    del array


def _dtype(store, rel):
    from graphstore.format import iter_entries
    return next(np.dtype(e["dtype"]) for e in iter_entries(store.manifest) if e["file"] == rel)


def test_a_sound_store_passes_every_check(store):
    store.check_structure()
    assert store_info(store)["edge_types"]["rates"]["num_edges"] == store.csr("rates").num_edges


def test_index_above_the_node_count_names_file_entry_and_fix(store):
    poke(store, "edges/rates/forward/indices.bin", 5, 31)
    fresh = open_store(store.path)  # sizes are unchanged: opening alone passes
    with pytest.raises(StoreError) as err:
        fresh.csr("rates")
    text = str(err.value)
    assert "edges/rates/forward/indices.bin: entry 5 is 31" in text
    assert "expected a dense user id in 0..29" in text
    assert "sagewalk store verify" in text and "sagewalk ingest" in text
    fresh.csr("rates", reverse=True)  # the other direction is sound and still opens


def test_reverse_direction_is_checked_against_the_source_type(store):
    poke(store, "edges/rates/reverse/indices.bin", 0, 20)
    with pytest.raises(StoreError, match=r"reverse/indices.bin: entry 0 is 20; expected a "
                                         r"dense item id in 0\.\.19"):
        open_store(store.path).csr("rates", reverse=True)


def test_decreasing_indptr_is_refused(store):
    rel = "edges/rates/forward/indptr.bin"
    indptr = np.asarray(store.csr("rates").indptr).copy()
    poke(store, rel, 7, indptr[6] - 1)
    with pytest.raises(StoreError, match=rf"forward/indptr.bin: entry 7 is {indptr[6] - 1}, "
                                         rf"below entry 6 \({indptr[6]}\); expected "
                                         "non-decreasing"):
        open_store(store.path).csr("rates")


def test_indptr_must_end_at_the_edge_count_and_start_at_zero(store):
    rel = "edges/rates/forward/indptr.bin"
    m = store.csr("rates").num_edges
    poke(store, rel, 20, m + 100)
    with pytest.raises(StoreError, match=rf"indptr.bin: last entry is {m + 100}; expected "
                                         rf"{m}, the length of edges/rates/forward/indices"):
        open_store(store.path).csr("rates")
    poke(store, rel, 20, m)
    poke(store, rel, 0, -3)
    with pytest.raises(StoreError, match="indptr.bin: entry 0 is -3; expected 0"):
        open_store(store.path).csr("rates")


def test_id_map_order_and_offsets_are_checked(store):
    poke(store, "ids/item/order.bin", 2, 500)
    with pytest.raises(StoreError, match=r"ids/item/order.bin: entry 2 is 500"):
        open_store(store.path).ids("item")
    poke(store, "ids/item/order.bin", 2, 0)
    total = int(np.asarray(store.ids("item").offsets)[-1])
    poke(store, "ids/item/offsets.bin", 20, total + 1)
    with pytest.raises(StoreError, match=r"ids/item/offsets.bin: last entry is"):
        open_store(store.path).ids("item")


def test_store_info_cli_refuses_a_damaged_store_with_status_2(store):
    poke(store, "edges/rates/forward/indices.bin", 0, 65535)
    run = subprocess.run([sys.executable, "-m", "sagewalk", "store", "info", str(store.path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "indices.bin: entry 0 is 65535" in run.stderr and "Traceback" not in run.stderr


def test_signed_ids_below_zero_are_refused(tmp_path):
    with pytest.raises(StoreError, match=r"x.bin: entry 3 is -1; expected a dense user id"):
        check_ids(tmp_path, "x.bin", np.array([0, 1, 2, -1, 1], np.int64), 5, "user")
    check_ids(tmp_path, "x.bin", np.array([0, 4], np.int64), 5, "user")
    check_ids(tmp_path, "x.bin", np.zeros(0, np.uint32), 0, "user")


def test_checks_cross_chunk_boundaries(tmp_path, monkeypatch):
    import graphstore.check as check
    monkeypatch.setattr(check, "_CHUNK", 4)
    offsets = np.arange(11, dtype=np.int64)
    check_offsets(tmp_path, "o.bin", offsets, 10, "data")
    offsets[4] = 2  # the drop sits exactly on a chunk edge (entries 3 -> 4)
    with pytest.raises(StoreError, match="entry 4 is 2, below entry 3"):
        check_offsets(tmp_path, "o.bin", offsets, 10, "data")
    ids = np.zeros(9, np.uint16)
    ids[8] = 7
    with pytest.raises(StoreError, match="entry 8 is 7"):
        check_ids(tmp_path, "i.bin", ids, 7, "item")


def _sound(indptr, indices, rows, cols) -> bool:
    """The reference: what the kernels need, in plain Python."""
    p, ix = indptr.tolist(), indices.tolist()
    return (len(p) == rows + 1 and p[0] == 0 and p[-1] == len(ix)
            and all(a <= b for a, b in zip(p, p[1:])) and all(0 <= v < cols for v in ix))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), rows=st.integers(1, 12), cols=st.integers(1, 12),
       signed=st.booleans())
def test_check_csr_refuses_exactly_what_the_reference_refuses(tmp_path_factory, data, rows,
                                                              cols, signed):
    degrees = data.draw(st.lists(st.integers(0, 4), min_size=rows, max_size=rows))
    indptr = np.zeros(rows + 1, np.int64)
    np.cumsum(degrees, out=indptr[1:])
    dtype = np.int64 if signed else np.uint16
    indices = np.array(data.draw(st.lists(st.integers(0, cols - 1), min_size=int(indptr[-1]),
                                          max_size=int(indptr[-1]))), dtype)
    target = data.draw(st.sampled_from(["indptr", "indices"] if indices.size else ["indptr"]))
    array = indptr if target == "indptr" else indices
    where = data.draw(st.integers(0, array.size - 1))
    low = -3 if (target == "indptr" or signed) else 0
    array[where] = data.draw(st.integers(low, int(indptr[-1]) + cols + 3))
    spec = {"indptr": {"file": "indptr.bin"}, "indices": {"file": "indices.bin"}}
    root = tmp_path_factory.getbasetemp()
    if _sound(indptr, indices, rows, cols):
        check_csr(root, spec, indptr, indices, rows, cols, "user")
    else:
        with pytest.raises(StoreError, match=rf"{target}.bin: .*expected"):
            check_csr(root, spec, indptr, indices, rows, cols, "user")


# -- a file changing under a mapping ---------------------------------------------

def test_a_mapped_file_that_changes_size_is_named_before_it_is_read(store):
    live = open_store(store.path)
    live.csr("rates")
    live.ids("item")
    live.check_files()  # nothing changed
    rel = "edges/rates/forward/indices.bin"
    size = (store.path / rel).stat().st_size
    with open(store.path / rel, "ab") as handle:  # grow, not shrink: no SIGBUS in this test
        handle.write(b"\0" * 8)
    with pytest.raises(StoreError) as err:
        live.check_files()
    text = str(err.value)
    assert f"{rel}: changed size from {size} to {size + 8} bytes" in text
    assert "SIGBUS" in text and "sagewalk ingest --overwrite" in text


def test_a_store_replaced_by_rename_is_not_a_change(store, tmp_path):
    live = open_store(store.path)
    before = np.asarray(live.csr("rates").indices).copy()
    shutil.copytree(store.path, tmp_path / "new")
    old = tmp_path / "old"
    os.rename(store.path, old)
    os.rename(tmp_path / "new", store.path)  # what `ingest --overwrite` does
    shutil.rmtree(old)
    live.check_files()  # the mapped inodes live on, intact
    assert np.array_equal(live.csr("rates").indices, before)
