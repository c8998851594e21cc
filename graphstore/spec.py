"""The TOML ingest spec, validated into frozen dataclasses.

    [node_types.item]
    ids = "str"                 # "int", "str" or "auto" (default: decided from the data)

    [[edges]]
    name = "rates"              # edge type name
    file = "ratings.csv"        # relative to the spec file
    src_type = "item"           # forward CSR rows
    dst_type = "user"
    src = "movie_id"            # column name or 0-based position (default 0)
    dst = "user_id"             # default 1
    weight = "rating"           # optional numeric column
    format = "csv"              # optional: csv, tsv, parquet, npy (default: by extension)

    [[nodes]]                   # node table: features and display attributes
    type = "item"
    file = "movies.csv"
    id = "movie_id"
    numeric = ["year"]          # standardised unless standardize = false
    multi_hot = { genres = "|" }
    text = ["title"]            # sentence embeddings (extra: text)
    attributes = ["title"]      # strings kept for display

    [[arrays]]                  # precomputed features, rows aligned with `ids`
    type = "item"
    file = "item_vectors.npy"
    ids = "item_ids.txt"        # one external id per line (default: row i is id i)
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphstore.errors import IngestError

ID_KINDS = ("auto", "int", "str")


@dataclass(frozen=True)
class EdgeFileSpec:
    name: str
    file: Path
    src_type: str
    dst_type: str
    src: str | int = 0
    dst: str | int = 1
    weight: str | int | None = None
    format: str | None = None
    delimiter: str | None = None
    header: bool = True


@dataclass(frozen=True)
class NodeFileSpec:
    type: str
    file: Path
    id: str | int = 0
    numeric: tuple[str, ...] = ()
    standardize: bool = True
    multi_hot: dict[str, str] = field(default_factory=dict)
    text: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()
    format: str | None = None
    delimiter: str | None = None
    header: bool = True


@dataclass(frozen=True)
class ArrayFileSpec:
    type: str
    file: Path
    ids: Path | None = None


@dataclass(frozen=True)
class IngestSpec:
    node_types: dict[str, str]            # node type -> id kind
    edges: tuple[EdgeFileSpec, ...]
    nodes: tuple[NodeFileSpec, ...] = ()
    arrays: tuple[ArrayFileSpec, ...] = ()


def simple_spec(edges: str | Path, src_type: str, dst_type: str, name: str | None = None,
                src_ids: str = "auto", dst_ids: str = "auto") -> IngestSpec:
    """The one-file form: first two columns are endpoints, a third (if any) the weight."""
    from graphstore.readers import column_names, detect
    source = detect(edges)
    weight = 2 if len(column_names(source)) >= 3 else None
    kinds = {src_type: src_ids} if src_type == dst_type else {src_type: src_ids,
                                                               dst_type: dst_ids}
    return IngestSpec(kinds, (EdgeFileSpec(name or f"{src_type}-{dst_type}", Path(edges),
                                           src_type, dst_type, 0, 1, weight),))


def load_spec(path: str | Path) -> IngestSpec:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise IngestError(f"{path}: ingest spec not found") from None
    except tomllib.TOMLDecodeError as err:
        raise IngestError(f"{path}: not valid TOML: {err}") from None
    return parse_spec(data, path.parent, str(path))


def parse_spec(data: dict[str, Any], base: Path, where: str = "spec") -> IngestSpec:
    _only(data, {"node_types", "edges", "nodes", "arrays"}, where)
    edges = tuple(_edge(e, base, f"{where}: edges[{i}]")
                  for i, e in enumerate(_tables(data, "edges", where)))
    if not edges:
        raise IngestError(f"{where}: no [[edges]] tables; a store needs at least one edge file")
    kinds = _node_types(data.get("node_types"), edges, where)
    nodes = tuple(_node(n, base, f"{where}: nodes[{i}]")
                  for i, n in enumerate(_tables(data, "nodes", where)))
    arrays = tuple(_array(a, base, f"{where}: arrays[{i}]")
                   for i, a in enumerate(_tables(data, "arrays", where)))
    for i, item in enumerate(nodes + arrays):
        if item.type not in kinds:
            raise IngestError(f"{where}: unknown node type {item.type!r} in "
                              f"{'nodes' if i < len(nodes) else 'arrays'}"
                              f"[{i if i < len(nodes) else i - len(nodes)}]; known node "
                              f"types: {', '.join(sorted(kinds))} (declare it under "
                              "[node_types] or fix the name)")
    return IngestSpec(kinds, edges, nodes, arrays)


def _node_types(table, edges, where) -> dict[str, str]:
    used = {t for e in edges for t in (e.src_type, e.dst_type)}
    if table is None:
        return {t: "auto" for t in sorted(used)}
    if not isinstance(table, dict):
        raise IngestError(f"{where}: node_types: expected a table of node types")
    kinds = {}
    for name, spec in table.items():
        _only(spec, {"ids"}, f"{where}: node_types.{name}")
        kind = spec.get("ids", "auto")
        if kind not in ID_KINDS:
            raise IngestError(f"{where}: node_types.{name}.ids: must be one of "
                              f"{', '.join(ID_KINDS)}, got {kind!r}")
        kinds[name] = kind
    for edge in edges:
        for t in (edge.src_type, edge.dst_type):
            if t not in kinds:
                raise IngestError(f"{where}: edge type {edge.name!r} uses unknown node type "
                                  f"{t!r}; declared node types: {', '.join(sorted(kinds))}")
    return kinds


def _tables(data, key, where) -> list[dict]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise IngestError(f"{where}: {key}: expected [[{key}]] tables")
    return value


def _only(table, allowed: set[str], where: str) -> None:
    if not isinstance(table, dict):
        raise IngestError(f"{where}: expected a table, got {table!r}")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise IngestError(f"{where}: unknown key {unknown[0]!r}; allowed keys: "
                          f"{', '.join(sorted(allowed))}")


def _require(table, keys, where) -> None:
    for key in keys:
        if key not in table:
            raise IngestError(f"{where}: missing required key {key!r}")


_COLUMN = (str, int)
_TYPES = {"name": str, "file": str, "src_type": str, "dst_type": str, "type": str,
          "src": _COLUMN, "dst": _COLUMN, "weight": _COLUMN, "id": _COLUMN, "format": str,
          "delimiter": str, "header": bool, "standardize": bool, "ids": str,
          "numeric": list, "text": list, "attributes": list, "multi_hot": dict}
_EXPECTED = {str: "a string", bool: "true or false", list: "a list of column names",
             dict: "a table of column = separator", _COLUMN: "a column name or position"}


def _check_types(t: dict, where: str) -> None:
    for key, value in t.items():
        want = _TYPES[key]
        ok = isinstance(value, want) and not (want is _COLUMN and isinstance(value, bool))
        if ok and want is list:
            ok = all(isinstance(v, str) for v in value)
        if ok and want is dict:
            ok = all(isinstance(v, str) and v for v in value.values())
        if not ok:
            raise IngestError(f"{where}.{key}: expected {_EXPECTED[want]}, got {value!r}")


def _edge(t, base, where) -> EdgeFileSpec:
    _only(t, set(EdgeFileSpec.__dataclass_fields__), where)
    _check_types(t, where)
    _require(t, ("file", "src_type", "dst_type"), where)
    t = {"name": f"{t['src_type']}-{t['dst_type']}", **t}
    return EdgeFileSpec(**{**t, "file": base / t["file"]})


def _node(t, base, where) -> NodeFileSpec:
    _only(t, set(NodeFileSpec.__dataclass_fields__), where)
    _check_types(t, where)
    _require(t, ("type", "file"), where)
    tuples = {k: tuple(t[k]) for k in ("numeric", "text", "attributes") if k in t}
    return NodeFileSpec(**{**t, **tuples, "file": base / t["file"]})


def _array(t, base, where) -> ArrayFileSpec:
    _only(t, set(ArrayFileSpec.__dataclass_fields__), where)
    _check_types(t, where)
    _require(t, ("type", "file"), where)
    ids = base / t["ids"] if t.get("ids") else None
    return ArrayFileSpec(t["type"], base / t["file"], ids)
