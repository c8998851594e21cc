"""The on-disk format: version, array entries in the manifest, dtypes, hashes.

A store is a directory holding `manifest.json` and raw little-endian arrays.
Each array is described by an *entry* ``{"file", "dtype", "shape", "sha256"}``
so that opening can check sizes cheaply and `store verify` can check content.
"""

from __future__ import annotations

import hashlib
import json
import os
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from graphstore.errors import StoreError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def index_dtype(num_nodes: int) -> np.dtype:
    """The narrowest dtype that holds every dense id 0..num_nodes-1.

    Dense ids are < num_nodes by construction, so the count alone proves the
    range: uint16 up to 65,536 nodes, uint32 up to 2**32, int64 beyond (int64,
    not uint64, because numpy mixes uint64 with int64 into float64).
    """
    if num_nodes <= 1 << 16:
        return np.dtype("<u2")
    if num_nodes <= 1 << 32:
        return np.dtype("<u4")
    return np.dtype("<i8")


def little_endian(dtype: Any) -> np.dtype:
    dtype = np.dtype(dtype)
    return dtype.newbyteorder("<") if dtype.byteorder == ">" else dtype


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def make_entry(root: Path, rel: str, dtype: Any, shape: tuple[int, ...]) -> dict[str, Any]:
    """Describe an array file already written under `root` (hashing its content)."""
    dtype = little_endian(dtype)
    return {"file": rel, "dtype": dtype.str, "shape": [int(s) for s in shape],
            "sha256": file_sha256(root / rel)}


def write_array(root: Path, rel: str, array: np.ndarray) -> dict[str, Any]:
    """Write `array` as raw little-endian bytes and return its manifest entry."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.ascontiguousarray(array, dtype=little_endian(array.dtype))
    array.tofile(path)
    return make_entry(root, rel, array.dtype, array.shape)


def expected_bytes(entry: dict[str, Any]) -> int:
    return int(np.prod(entry["shape"], dtype=np.int64)) * np.dtype(entry["dtype"]).itemsize


def open_array(root: Path, entry: dict[str, Any], watch: "MappedFiles | None" = None
               ) -> np.ndarray:
    """Memory-map an array read-only after checking its size against the manifest.
    With `watch`, the file stays open there so `watch.check()` sees it change size."""
    path = root / entry["file"]
    if not path.is_file():
        raise StoreError(f"{path}: file missing from the store (the manifest lists it); "
                         "the store is incomplete: rebuild it with `sagewalk ingest`")
    with open(path, "rb") as handle:
        size, want = os.fstat(handle.fileno()).st_size, expected_bytes(entry)
        if size != want:
            raise StoreError(f"{path}: {size} bytes, the manifest expects {want} "
                             f"({entry['dtype']} {entry['shape']}); the file is truncated or "
                             "was edited: rebuild the store with `sagewalk ingest`")
        if want == 0:  # numpy cannot map an empty file
            return np.zeros(entry["shape"], dtype=entry["dtype"])
        array = np.memmap(handle, dtype=entry["dtype"], mode="r", shape=tuple(entry["shape"]))
        if watch is not None:
            watch.add(path, os.dup(handle.fileno()), want)
    return array


class MappedFiles:
    """Files this process has memory-mapped, each kept open (one descriptor)
    so that `check()` can fstat the very inode that is mapped.

    Reading a page of a mapped file that was truncated under the mapping is
    a SIGBUS: the process dies in the middle of a kernel with no message.
    `check()` before each unit of work turns that into a StoreError naming
    the file.  A store replaced by a rename (`sagewalk ingest --overwrite`)
    is not a change here: the mapped inode lives on, intact, until unmapped.
    """

    def __init__(self):
        self._files: list[tuple[Path, int, int]] = []   # (path, fd, size when mapped)
        self._closer = weakref.finalize(self, _close_all, self._files)

    def add(self, path: Path, fd: int, size: int) -> None:
        self._files.append((path, fd, size))

    def __len__(self) -> int:
        return len(self._files)

    def check(self) -> None:
        """StoreError if any mapped file changed size since it was mapped."""
        for path, fd, size in self._files:
            now = os.fstat(fd).st_size
            if now != size:
                raise StoreError(
                    f"{path}: changed size from {size} to {now} bytes while this process "
                    "had it memory-mapped (truncated or rewritten in place); reading it "
                    "now would kill the process with SIGBUS; expected a store to stay "
                    "unchanged while it is in use; fix: rebuild it with `sagewalk ingest "
                    "--overwrite` (which replaces a store atomically, safe under running "
                    "processes), check it with `sagewalk store verify`, then restart")


def _close_all(files: list[tuple[Path, int, int]]) -> None:
    for _, fd, _ in files:
        os.close(fd)
    files.clear()


def iter_entries(manifest: dict[str, Any]):
    """Every array entry in a manifest (wherever it sits in the tree)."""
    def walk(node):
        if isinstance(node, dict):
            if {"file", "dtype", "shape", "sha256"} <= node.keys():
                yield node
                return
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)
    yield from walk({k: v for k, v in manifest.items() if k != "build"})


def content_digest(manifest: dict[str, Any]) -> str:
    """Hex digest of what a store holds (counts, types, array hashes), not of
    how or when it was built: two identical builds share a digest."""
    content = {k: v for k, v in manifest.items() if k != "build"}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not root.is_dir():
        raise StoreError(f"{root}: no such store directory; build one with "
                         "`sagewalk ingest --edges FILE --src-type A --dst-type B --out DIR`")
    if not path.is_file():
        raise StoreError(f"{root}: not a graph store ({MANIFEST} missing); build one with "
                         "`sagewalk ingest`")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise StoreError(f"{path}: not valid JSON ({err}); the manifest was edited or "
                         "truncated: rebuild the store with `sagewalk ingest`") from err
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if version != FORMAT_VERSION:
        raise StoreError(f"{root}: store format version {version!r}, this sagewalk reads "
                         f"version {FORMAT_VERSION}; rebuild the store from its inputs with "
                         "this version's `sagewalk ingest`")
    return manifest
