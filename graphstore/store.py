"""Reading a store: every array is a read-only memmap, checked against the
manifest (format version, file sizes) when the store is opened; a CSR's
structure (offsets, id ranges: graphstore/check.py) when it is first mapped."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from graphstore.errors import StoreError
from graphstore.check import check_csr, check_ids, check_offsets
from graphstore.format import (MappedFiles, content_digest, iter_entries, open_array,
                               read_manifest)
from graphstore.idmap import IdMap, decode_strings, open_idmap


@dataclass(frozen=True)
class EdgeType:
    name: str
    src_type: str
    dst_type: str
    num_edges: int
    weighted: bool


@dataclass(frozen=True)
class CSR:
    """Compressed sparse rows: row r's neighbours are indices[indptr[r]:indptr[r+1]]."""

    indptr: np.ndarray            # int64 [num_rows + 1]
    indices: np.ndarray           # uint16 / uint32 / int64 [num_edges]
    weights: np.ndarray | None    # float32 [num_edges] or None

    @property
    def num_rows(self) -> int:
        return int(self.indptr.shape[0]) - 1

    @property
    def num_edges(self) -> int:
        return int(self.indices.shape[0])

    def degrees(self) -> np.ndarray:
        return np.diff(np.asarray(self.indptr))

    def neighbors(self, row: int) -> np.ndarray:
        return np.asarray(self.indices[self.indptr[row]:self.indptr[row + 1]])


class Store:
    """An opened graph store (see docs/graphstore.md for the layout)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.manifest: dict[str, Any] = read_manifest(self.path)
        for entry in iter_entries(self.manifest):
            open_array(self.path, entry)  # size check of every file, cheap (no reads)
        self._csr: dict[tuple[str, bool], CSR] = {}
        self._features: dict[str, np.ndarray | None] = {}
        self._ids: dict[str, IdMap] = {}
        self._mapped = MappedFiles()  # what check_files() watches for a size change

    def __reduce__(self):
        # Sent to another process (spawn, multiprocessing): reopen by path there
        # instead of pickling the mapped arrays' contents.
        return (open_store, (str(self.path),))

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, nodes={self.node_types}, edges={list(self.edge_types)})"

    @cached_property
    def digest(self) -> str:
        return content_digest(self.manifest)

    @cached_property
    def node_types(self) -> dict[str, int]:
        return {name: int(spec["count"]) for name, spec in self.manifest["node_types"].items()}

    @cached_property
    def edge_types(self) -> dict[str, EdgeType]:
        return {name: EdgeType(name, spec["src_type"], spec["dst_type"],
                               int(spec["num_edges"]), bool(spec["weighted"]))
                for name, spec in self.manifest["edge_types"].items()}

    def csr(self, edge_type: str, reverse: bool = False) -> CSR:
        """Forward: src_type -> dst_type rows; reverse=True: dst_type -> src_type.
        The first call per direction checks its structure (one pass over it):
        StoreError names the damaged file."""
        key = (edge_type, bool(reverse))
        if key not in self._csr:
            spec = self._edge_spec(edge_type)["reverse" if reverse else "forward"]
            et = self.edge_types[edge_type]
            rows, cols = (et.dst_type, et.src_type) if reverse else (et.src_type, et.dst_type)
            indptr = open_array(self.path, spec["indptr"], self._mapped)
            indices = open_array(self.path, spec["indices"], self._mapped)
            check_csr(self.path, spec, indptr, indices, self.node_types[rows],
                      self.node_types[cols], cols)
            weights = spec.get("weights")
            self._csr[key] = CSR(indptr, indices, None if weights is None else
                                 open_array(self.path, weights, self._mapped))
        return self._csr[key]

    def check_structure(self) -> None:
        """Check every CSR, both directions, and the id maps (what a process
        that maps them all would check); StoreError names the first damaged file."""
        for name in self.edge_types:
            self.csr(name)
            self.csr(name, reverse=True)
        for node_type in self.node_types:
            self.ids(node_type)

    def mapped_arrays(self) -> list[np.ndarray]:
        """The CSR and feature arrays this process has opened so far (to hint
        the kernel about their pages: graphstore/pages.py)."""
        out = [a for csr in self._csr.values()
               for a in (csr.indptr, csr.indices, csr.weights) if a is not None]
        return out + [f for f in self._features.values() if f is not None]

    def check_files(self) -> None:
        """StoreError if a file this process has mapped changed size since:
        cheap (one fstat per mapped file), meant before each unit of work."""
        self._mapped.check()

    def features(self, node_type: str) -> np.ndarray | None:
        self._check_node_type(node_type)
        if node_type not in self._features:  # one mapping per process, not per call
            entry = self.manifest.get("features", {}).get(node_type)
            self._features[node_type] = None if entry is None else open_array(
                self.path, entry["array"], self._mapped)
        return self._features[node_type]

    def feature_columns(self, node_type: str) -> list[dict[str, Any]]:
        """Which feature columns occupy which slice of features(node_type)."""
        entry = self.manifest.get("features", {}).get(node_type)
        return [] if entry is None else list(entry.get("columns", []))

    def ids(self, node_type: str) -> IdMap:
        self._check_node_type(node_type)
        if node_type not in self._ids:
            idmap = open_idmap(self.path, node_type,
                               self.manifest["node_types"][node_type]["ids"], self._mapped)
            self._check_idmap(idmap)
            self._ids[node_type] = idmap
        return self._ids[node_type]

    def attribute_names(self, node_type: str) -> list[str]:
        self._check_node_type(node_type)
        return sorted(self.manifest.get("attributes", {}).get(node_type, {}))

    def attribute(self, node_type: str, name: str, dense_ids) -> list[str]:
        names = self.attribute_names(node_type)
        if name not in names:
            raise StoreError(f"{node_type} has no attribute {name!r}; stored attributes: "
                             f"{', '.join(names) or 'none'}")
        spec = self.manifest["attributes"][node_type][name]
        rows = np.asarray(dense_ids, dtype=np.int64).reshape(-1)
        count = self.node_types[node_type]
        if rows.size and (rows.min() < 0 or rows.max() >= count):
            raise StoreError(f"dense {node_type} id out of range 0..{count - 1} "
                             f"in attribute({node_type!r}, {name!r})")
        return decode_strings(open_array(self.path, spec["bytes"]),
                              open_array(self.path, spec["offsets"]), rows)

    def _check_idmap(self, idmap: IdMap) -> None:
        """Lookups return order[...] as dense ids and slice strings by offsets:
        both are proven in range here (O(nodes), once per process)."""
        files = self.manifest["node_types"][idmap.node_type]["ids"]["files"]
        count = self.node_types[idmap.node_type]
        check_ids(self.path, files["order"]["file"], idmap.order, count, idmap.node_type)
        if idmap.offsets is not None:
            check_offsets(self.path, files["offsets"]["file"], idmap.offsets,
                          int(idmap.data.shape[0]), files["bytes"]["file"])

    def _check_node_type(self, node_type: str) -> None:
        if node_type not in self.node_types:
            raise StoreError(f"unknown node type {node_type!r}; this store has: "
                             f"{', '.join(self.node_types)}")

    def _edge_spec(self, edge_type: str) -> dict[str, Any]:
        try:
            return self.manifest["edge_types"][edge_type]
        except KeyError:
            raise StoreError(f"unknown edge type {edge_type!r}; this store has: "
                             f"{', '.join(self.manifest['edge_types'])}") from None


def open_store(path: str | os.PathLike) -> Store:
    """Open a store read-only; StoreError says what is wrong and how to fix it."""
    try:
        return Store(path)
    except (KeyError, TypeError, ValueError) as err:
        raise StoreError(f"{path}: manifest.json is malformed ({type(err).__name__}: {err}); "
                         "rebuild the store with `sagewalk ingest`") from err
