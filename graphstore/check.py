"""Structural checks of a store's arrays: what the kernels rely on to stay
inside their arrays, checked when an array is first mapped.

Opening a store checks every file's size against the manifest (`format.py`),
but a file edited in place keeps its size.  The walk kernels index one array
by the values of another (`indices[indptr[r]]`, `ctx_ptr[item_ctx[p]]`), so a
bad value is an out-of-bounds read: a segfault, or silently wrong walks.
These checks prove the invariants the kernels need:

* offsets (CSR `indptr`, string offsets): start at 0, never decrease, end at
  the length of the array they index;
* ids (CSR `indices`, id-map `order`): 0 <= id < the target node count.

One sequential pass per array, in chunks (no temporary the size of the
array), at memory bandwidth: see benchmarks/RESULTS.md (## store checks) for
the cost on a 1B-edge store.  Content that is in range but wrong is what
`sagewalk store verify` (SHA-256 of every file) is for.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graphstore.errors import StoreError

_CHUNK = 1 << 22  # elements per pass: 32 MiB of int64, far below any memory budget


def _fix(root: Path) -> str:
    return (f"fix: run `sagewalk store verify {root}` to list the damaged files and rebuild "
            "the store with `sagewalk ingest`")


def check_offsets(root: Path, rel: str, offsets: np.ndarray, end: int, what: str) -> None:
    """offsets[0] == 0, non-decreasing, offsets[-1] == end (the length of `what`)."""
    path = root / rel
    if offsets.shape[0] == 0:
        raise StoreError(f"{path}: empty offset array; expected at least one entry (0); "
                         + _fix(root))
    if int(offsets[0]) != 0:
        raise StoreError(f"{path}: entry 0 is {int(offsets[0])}; expected 0 (offsets start "
                         "at the first edge); the file is damaged; " + _fix(root))
    for lo in range(0, offsets.shape[0] - 1, _CHUNK):
        block = np.asarray(offsets[lo:lo + _CHUNK + 1])
        down = np.flatnonzero(block[1:] < block[:-1])
        if down.size:
            i = lo + int(down[0])
            raise StoreError(
                f"{path}: entry {i + 1} is {int(block[down[0] + 1])}, below entry {i} "
                f"({int(block[down[0]])}); expected non-decreasing offsets (row {i} would "
                "have a negative degree); the file is damaged; " + _fix(root))
    last = int(offsets[-1])
    if last != end:
        raise StoreError(f"{path}: last entry is {last}; expected {end}, the length of "
                         f"{what}; the file is damaged; " + _fix(root))


def check_ids(root: Path, rel: str, ids: np.ndarray, count: int, what: str) -> None:
    """Every id in 0..count-1 (`what` names the node type the ids refer to)."""
    path = root / rel
    signed = ids.dtype.kind == "i"
    for lo in range(0, ids.shape[0], _CHUNK):
        block = np.asarray(ids[lo:lo + _CHUNK])
        if int(block.max()) < count and (not signed or int(block.min()) >= 0):
            continue
        bad = np.flatnonzero((block >= count) | (block < 0) if signed else block >= count)
        j = lo + int(bad[0])
        raise StoreError(f"{path}: entry {j} is {int(ids[j])}; expected a dense {what} id "
                         f"in 0..{count - 1}; the file is damaged; " + _fix(root))


def check_csr(root: Path, spec: dict, indptr: np.ndarray, indices: np.ndarray,
              num_rows: int, num_cols: int, col_type: str) -> None:
    """One direction of an edge type (`spec`: its manifest entries): indptr
    [num_rows + 1] offsets into indices, ids of `col_type` (num_cols nodes)."""
    ptr_rel, idx_rel = spec["indptr"]["file"], spec["indices"]["file"]
    if indptr.shape[0] != num_rows + 1:
        raise StoreError(f"{root / ptr_rel}: {indptr.shape[0]} entries; expected "
                         f"{num_rows + 1} (one more than the row count in the manifest); "
                         "the manifest was edited; " + _fix(root))
    check_offsets(root, ptr_rel, indptr, int(indices.shape[0]), idx_rel)
    check_ids(root, idx_rel, indices, num_cols, col_type)
