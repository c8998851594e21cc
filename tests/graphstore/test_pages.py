"""graphstore/pages.py: unmapping what a process touched, windowed gathers."""

import mmap
from pathlib import Path

import numpy as np
import pytest

from graphstore.pages import advise_random, drop, gather_rows


def resident(path: Path) -> int:
    """Bytes of `path`'s mappings resident in this process (/proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5 and ":" in fields[3]:
            inside = len(fields) >= 6 and fields[5] == str(path)
        elif inside and fields[0] == "Rss:":
            total += int(fields[1]) * 1024
    return total


def table(tmp_path, rows=20_000, cols=16):
    path = tmp_path / "t.npy"
    t = np.lib.format.open_memmap(path, "w+", np.float32, (rows, cols))
    t[:] = np.arange(rows * cols, dtype=np.float32).reshape(rows, cols)
    t.flush()
    return path, t


def test_drop_unmaps_the_rows_and_keeps_their_data(tmp_path):
    path, t = table(tmp_path)
    assert resident(path) >= t.nbytes // 2      # written: resident
    drop(t, 0, 10_000)
    assert resident(path) <= t.nbytes // 2 + 2 * mmap.PAGESIZE
    drop(t)
    assert resident(path) == 0
    again = np.load(path, mmap_mode="r")
    np.testing.assert_array_equal(t[123], again[123])   # data reached the file
    assert float(t[19_999, 15]) == 20_000 * 16 - 1         # and reads back in place


def test_drop_ignores_plain_arrays():
    assert drop(np.zeros((10, 4))) == 0


def test_gather_rows_equals_fancy_indexing_within_one_window(tmp_path):
    path, t = table(tmp_path)
    drop(t)
    ro = np.load(path, mmap_mode="r")
    full = np.array(ro)
    drop(ro)
    rows = np.random.default_rng(0).integers(0, len(ro), 50_000)
    window = 64 * 1024
    got = gather_rows(ro, rows, window)
    # every window was unmapped once read: nothing of the table stays mapped
    assert resident(path) == 0
    np.testing.assert_array_equal(got, full[rows])
    np.testing.assert_array_equal(gather_rows(full, rows[:10], window), full[rows[:10]])
    assert gather_rows(ro, np.zeros(0, np.int64), window).shape == (0, 16)


def test_drop_leaves_locked_pages_alone(tmp_path):
    import ctypes
    path, t = table(tmp_path)
    drop(t)
    ro = np.load(path, mmap_mode="r")
    libc = ctypes.CDLL(None, use_errno=True)
    addr = ro.ctypes.data // mmap.PAGESIZE * mmap.PAGESIZE
    if libc.mlock(ctypes.c_void_p(addr), ctypes.c_size_t(mmap.PAGESIZE)) != 0:
        pytest.skip("mlock not allowed here (RLIMIT_MEMLOCK)")
    try:
        assert drop(ro) == 0          # EINVAL from the kernel: the locked range stays
        assert resident(path) > 0
    finally:
        libc.munlock(ctypes.c_void_p(addr), ctypes.c_size_t(mmap.PAGESIZE))


def test_advise_random_stops_faults_reading_around_their_page(tmp_path, vm_flags):
    from sampler.walks import missing_pages
    path = tmp_path / "cold.bin"
    with open(path, "wb") as f:
        f.truncate(64 << 20)                       # a hole: nothing of it cached yet
    a = np.memmap(path, np.uint8, "r")
    assert "rr" not in vm_flags(path)
    assert advise_random(a) and "rr" in vm_flags(path)   # VM_RAND_READ
    touched = np.arange(0, a.size, 997 * mmap.PAGESIZE)
    assert int(a[touched].sum()) == 0
    pages = np.arange(a.size // mmap.PAGESIZE)
    resident = pages.size - missing_pages(a.ctypes.data, pages, mmap.PAGESIZE)
    assert resident <= 2 * touched.size           # its own pages, not megabytes around them
    assert not advise_random(np.zeros(4))
