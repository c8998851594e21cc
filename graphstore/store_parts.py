"""Writing the parts of a store into a build directory: both CSR directions
of an edge type, node features and string attributes.  Shared by
`build_from_arrays` (tests) and `ingest` (files)."""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from graphstore.config import GraphstoreConfig
from graphstore.csr_build import EdgeChunk, Source, build_csr, csr_source
from graphstore.errors import StoreError
from graphstore.format import index_dtype, write_array
from graphstore.idmap import encode_strings


_DEFAULTS = GraphstoreConfig()


@dataclass(frozen=True)
class BuildOptions:
    """How a build runs.  The defaults are [graphstore]'s, so
    `build_from_arrays` builds the store `sagewalk ingest` would."""

    memory_budget: int = _DEFAULTS.memory_budget
    chunk_rows: int = _DEFAULTS.chunk_rows
    duplicates: str = _DEFAULTS.duplicates
    self_loops: str = _DEFAULTS.self_loops
    feature_dtype: str = _DEFAULTS.feature_dtype

    @classmethod
    def from_config(cls, config: Any) -> "BuildOptions":
        """From a GraphstoreConfig (or anything with the same attributes)."""
        return cls(**{name: getattr(config, name) for name in cls.__dataclass_fields__})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EdgeTypeDef:
    name: str
    src_type: str
    dst_type: str
    weighted: bool


def write_edge_type(root: Path, edge: EdgeTypeDef, source: Source,
                    counts: dict[str, int], options: BuildOptions) -> tuple[dict, dict]:
    """Both CSR directions of one edge type; returns (manifest spec, report).

    Rows come out sorted without a comparison sort: an LSD radix sort of
    counting-sort passes.  Edges are first bucketed by destination (scratch),
    then that scratch CSR is transposed into the forward CSR, which visits
    destinations in order, so each forward row receives its columns sorted
    (and duplicates adjacent).  The reverse CSR is the forward's transpose.
    """
    n_src, n_dst = counts[edge.src_type], counts[edge.dst_type]
    src_dtype, dst_dtype = index_dtype(n_src), index_dtype(n_dst)
    # Half the budget for the sort buffer; the rest covers chunks and per-row counters.
    buffer = max(1, options.memory_budget // 2)
    base, tmp = f"edges/{edge.name}", f"_scratch/{edge.name}-by-dst"
    by_dst, dstats, src_counts = build_csr(
        root, tmp, _swapped(source), num_rows=n_dst, col_dtype=src_dtype,
        weighted=edge.weighted, buffer_bytes=buffer, sort=False, hashed=False, num_cols=n_src)
    forward, fstats, dst_counts = build_csr(
        root, f"{base}/forward", _transpose(root, by_dst, src_dtype, edge, options),
        num_rows=n_src, col_dtype=dst_dtype, weighted=edge.weighted, buffer_bytes=buffer,
        dedupe=options.duplicates == "drop", presorted=True, counts=src_counts,
        num_cols=n_dst, drop_self=options.self_loops == "drop" and edge.src_type == edge.dst_type)
    shutil.rmtree(root / tmp)
    reverse, rstats, _ = build_csr(root, f"{base}/reverse",
                                   _transpose(root, forward, dst_dtype, edge, options),
                                   num_rows=n_dst, col_dtype=src_dtype, weighted=edge.weighted,
                                   buffer_bytes=buffer, sort=False, counts=dst_counts)
    spec = {"src_type": edge.src_type, "dst_type": edge.dst_type,
            "num_edges": fstats.edges_out, "weighted": edge.weighted,
            "forward": forward, "reverse": reverse}
    report = {"edges_in": fstats.edges_in, "edges_out": fstats.edges_out,
              "self_loops_dropped": fstats.self_loops_dropped,
              "duplicates_dropped": fstats.duplicates_dropped,
              "sort_passes": dstats.passes + fstats.passes + rstats.passes}
    return spec, report


def _swapped(source: Source) -> Source:
    return lambda: (EdgeChunk(c.cols, c.rows, c.weights) for c in source())


def _transpose(root: Path, entries: dict, col_dtype, edge: EdgeTypeDef, options) -> Source:
    indptr = np.fromfile(root / entries["indptr"]["file"], dtype=np.int64)
    weights = root / entries["weights"]["file"] if edge.weighted else None
    return csr_source(indptr, root / entries["indices"]["file"], col_dtype, weights,
                      options.chunk_rows, reverse=True)


def write_features(root: Path, node_type: str, array: np.ndarray, count: int,
                   dtype: str, columns: list[dict] | None = None) -> dict[str, Any]:
    array = np.asarray(array)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] != count:
        raise StoreError(f"features of {node_type}: expected shape [{count}, d] "
                         f"(one row per {node_type} node), got {list(array.shape)}")
    if array.dtype.kind not in "fiub":
        raise StoreError(f"features of {node_type}: expected numbers, got dtype {array.dtype}")
    out = array.astype(dtype)
    if not np.all(np.isfinite(out)):
        raise StoreError(f"features of {node_type}: non-finite values (NaN/inf or beyond "
                         f"{dtype} range); clean or rescale the feature columns")
    entry = write_array(root, f"features/{node_type}.bin", out)
    return {"array": entry, "columns": columns or [
        {"name": "features", "kind": "array", "start": 0, "stop": int(out.shape[1])}]}


def write_attribute(root: Path, node_type: str, name: str, values: Sequence[str],
                    count: int) -> dict[str, Any]:
    if len(values) != count:
        raise StoreError(f"attribute {name!r} of {node_type}: {len(values)} values for "
                         f"{count} {node_type} nodes; give one value per node")
    data, offsets = encode_strings([str(v) for v in values])
    base = f"attributes/{node_type}/{name}"
    return {"bytes": write_array(root, f"{base}.bytes", data),
            "offsets": write_array(root, f"{base}.offsets", offsets)}
