"""External id <-> dense id maps, on disk and queried without Python dicts.

Two kinds, chosen at build time per node type:

* ``int``: external ids are integers.  ``values[dense]`` gives the external id;
  ``keys`` (sorted) with ``order`` (dense id of each key) answers the reverse
  by binary search.
* ``str``: external ids are strings.  ``offsets``/``bytes`` hold the UTF-8 id
  of each dense id; ``keys`` are sorted 64-bit FNV-1a hashes with ``order``.
  A hash hit is confirmed by comparing the stored string, so a string that is
  not in the map can never alias one that is.

Every array is memory-mapped; a lookup touches O(log n) pages per id.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from graphstore.errors import StoreError, UnknownIdError
from graphstore.format import index_dtype, open_array, write_array


def encode_strings(strings: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 bytes blob and int64 offsets [n+1] of a sequence of strings."""
    encoded = [s.encode("utf-8") for s in strings]
    lengths = np.fromiter((len(b) for b in encoded), dtype=np.int64, count=len(encoded))
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    return data, offsets


def hash_strings(strings: Sequence[str]) -> np.ndarray:
    from graphstore.kernels import fnv1a_hashes
    data, offsets = encode_strings(strings)
    return fnv1a_hashes(data if data.size else np.zeros(1, np.uint8), offsets)


def decode_strings(data: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> list[str]:
    return [bytes(data[offsets[r]:offsets[r + 1]]).decode("utf-8") for r in rows]


@dataclass(frozen=True)
class IdMap:
    """One node type's id map (read-only, memory-mapped)."""

    node_type: str
    kind: str                      # "int" or "str"
    keys: np.ndarray               # sorted int64 ids or uint64 hashes
    order: np.ndarray              # dense id of keys[i]
    values: np.ndarray | None      # int kind: external id per dense id
    data: np.ndarray | None        # str kind: UTF-8 blob
    offsets: np.ndarray | None     # str kind: int64 [n+1]

    def __len__(self) -> int:
        return int(self.order.shape[0])

    def to_dense(self, external: Iterable[Any]) -> np.ndarray:
        """Dense int64 ids of external ids; UnknownIdError names the first unknown."""
        items = list(external) if not isinstance(external, np.ndarray) else external
        if len(items) == 0:
            return np.zeros(0, dtype=np.int64)
        if self.kind == "int":
            queries = self._parse_ints(items)
        else:
            items = [str(x) for x in items]
            queries = hash_strings(items)
        pos = np.searchsorted(self.keys, queries)
        found = pos < len(self)
        found[found] = self.keys[pos[found]] == queries[found]
        dense = np.full(len(queries), -1, dtype=np.int64)
        dense[found] = self.order[pos[found]]
        if self.kind == "str":
            self._confirm(items, dense)
        missing = np.flatnonzero(dense < 0)
        if missing.size:
            raise UnknownIdError(self.node_type, _plain(items[missing[0]]))
        return dense

    def to_external(self, dense: Iterable[int]) -> list[str]:
        """External ids (as strings) of dense ids."""
        rows = np.asarray(dense, dtype=np.int64).reshape(-1)
        bad = np.flatnonzero((rows < 0) | (rows >= len(self)))
        if bad.size:
            raise StoreError(f"dense {self.node_type} id {int(rows[bad[0]])} out of range: "
                             f"the store has {len(self)} {self.node_type} nodes "
                             f"(valid ids 0..{len(self) - 1})")
        if self.kind == "int":
            return [str(v) for v in np.asarray(self.values[rows]).tolist()]
        return decode_strings(self.data, self.offsets, rows)

    def _parse_ints(self, items) -> np.ndarray:
        array = np.asarray(items)
        if array.dtype.kind in "iu":
            return array.astype(np.int64)
        out = np.empty(len(items), dtype=np.int64)
        for i, item in enumerate(items):
            try:
                out[i] = int(item)
            except (TypeError, ValueError, OverflowError):
                raise UnknownIdError(self.node_type, _plain(item)) from None
        return out

    def _confirm(self, items: list[str], dense: np.ndarray) -> None:
        hits = np.flatnonzero(dense >= 0)
        stored = decode_strings(self.data, self.offsets, dense[hits])
        for i, text in zip(hits, stored):
            if items[i] != text:
                dense[i] = -1


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def open_idmap(root: Path, node_type: str, spec: dict[str, Any], watch=None) -> IdMap:
    files = spec["files"]
    get = lambda name: open_array(root, files[name], watch) if name in files else None  # noqa: E731
    return IdMap(node_type, spec["kind"], get("keys"), get("order"), get("values"),
                 get("bytes"), get("offsets"))


def write_int_idmap(root: Path, node_type: str, values: np.ndarray) -> dict[str, Any]:
    """Id map of integer external ids; values[dense] = external id (unique)."""
    values = np.asarray(values, dtype=np.int64)
    order = np.argsort(values, kind="stable")
    keys = values[order]
    dup = np.flatnonzero(keys[1:] == keys[:-1])
    if dup.size:
        raise StoreError(f"{node_type}: external id {int(keys[dup[0]])} given twice; "
                         "external ids must be unique per node type")
    base = f"ids/{node_type}"
    return {"kind": "int", "files": {
        "values": write_array(root, f"{base}/values.bin", values),
        "keys": write_array(root, f"{base}/keys.bin", keys),
        "order": write_array(root, f"{base}/order.bin",
                             order.astype(index_dtype(len(values))))}}


def write_str_idmap(root: Path, node_type: str, data: np.ndarray, offsets: np.ndarray,
                    hashes: np.ndarray | None = None) -> dict[str, Any]:
    """Id map of string external ids given as a UTF-8 blob with offsets by dense id."""
    from graphstore.kernels import fnv1a_hashes
    if hashes is None:
        hashes = fnv1a_hashes(data if data.size else np.zeros(1, np.uint8), offsets)
    order = np.argsort(hashes, kind="stable")
    keys = hashes[order]
    _check_unique_hashes(node_type, keys, order, data, offsets)
    base = f"ids/{node_type}"
    return {"kind": "str", "files": {
        "bytes": write_array(root, f"{base}/bytes.bin", data),
        "offsets": write_array(root, f"{base}/offsets.bin", offsets),
        "keys": write_array(root, f"{base}/keys.bin", keys),
        "order": write_array(root, f"{base}/order.bin",
                             order.astype(index_dtype(len(offsets) - 1)))}}


def _check_unique_hashes(node_type, keys, order, data, offsets) -> None:
    same = np.flatnonzero(keys[1:] == keys[:-1])
    if not same.size:
        return
    a, b = decode_strings(data, offsets, order[[same[0], same[0] + 1]])
    if a == b:
        raise StoreError(f"{node_type}: external id {a!r} given twice; external ids must "
                         "be unique per node type")
    raise StoreError(f"{node_type}: ids {a!r} and {b!r} share a 64-bit hash; rename one "
                     "of them (this is astronomically rare)")
