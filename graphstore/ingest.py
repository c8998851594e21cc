"""Ingest: edge and node files -> a store, out of core.

Pass 1 reads every id column once and fixes dense ids per node type; pass 2
re-reads the edge files, maps ids to dense ids and appends them to scratch
files; then each edge type's CSR is built by counting sort over the scratch
files (csr_build), and node features/attributes are written (features).
Everything happens inside a StoreWriter: a failure leaves nothing behind.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np

from graphstore.convert import where
from graphstore.csr_build import EdgeChunk, read_slice
from graphstore.errors import IngestError
from graphstore.format import index_dtype
from graphstore.ids_build import IntCollector, StrCollector
from graphstore.readers import ColumnRequest, TableSource, detect, read_chunks
from graphstore.spec import EdgeFileSpec, IngestSpec
from graphstore.store import Store, open_store
from graphstore.store_parts import BuildOptions, EdgeTypeDef, write_edge_type
from graphstore.writer import StoreWriter

log = logging.getLogger(__name__)


def ingest(spec: IngestSpec, out_dir: str | Path, options: BuildOptions, *,
           overwrite: bool = False) -> tuple[Store, dict]:
    """Build a store from `spec` at `out_dir`; returns the store and the build report."""
    from graphstore.feature_inputs import FeatureInputs
    from graphstore.features import write_node_data
    started = time.perf_counter()
    edge_defs = _edge_defs(spec)
    inputs = FeatureInputs.from_spec(spec)
    kinds = decide_kinds(spec, inputs, options)
    elapsed = lambda: f"{time.perf_counter() - started:.1f} s"  # noqa: E731
    with StoreWriter(out_dir, overwrite=overwrite) as writer:
        log.info("pass 1: collecting ids (%s id kinds: %s)", len(kinds), kinds)
        mappers = collect_ids(spec, inputs, kinds, options)
        counts = {t: len(m) for t, m in mappers.items()}
        log.info("dense ids assigned after %s: %s; pass 2: mapping edges", elapsed(), counts)
        rows = write_scratch_edges(spec, mappers, writer.scratch(), options)
        log.info("%s edge rows mapped after %s; sorting", sum(rows.values()), elapsed())
        edge_specs, edge_report = {}, {}
        for name, edef in edge_defs.items():
            source = scratch_source(writer.scratch(), edef, counts, options.chunk_rows)
            edge_specs[name], edge_report[name] = write_edge_type(
                writer.root, edef, source, counts, options)
            edge_report[name]["rows_read"] = rows[name]
            shutil.rmtree(writer.scratch() / name)  # disk back before the next edge type
            log.info("edge type %s built after %s: %s", name, elapsed(), edge_report[name])
        features, attributes, node_report = write_node_data(writer.root, inputs, mappers,
                                                            counts, options)
        report = {"edge_types": edge_report, "node_types": node_report,
                  "seconds": round(time.perf_counter() - started, 3)}
        manifest = {"node_types": {t: {"count": counts[t], "ids": mappers[t].write(writer.root)}
                                   for t in counts},
                    "edge_types": edge_specs, "features": features, "attributes": attributes,
                    "build": {"source": "ingest", "options": options.as_dict(),
                              "inputs": [str(e.file) for e in spec.edges], "report": report}}
        writer.commit(manifest)
    return open_store(out_dir), report


def _edge_defs(spec: IngestSpec) -> dict[str, EdgeTypeDef]:
    defs: dict[str, EdgeTypeDef] = {}
    for e in spec.edges:
        edef = EdgeTypeDef(e.name, e.src_type, e.dst_type, e.weight is not None)
        if defs.setdefault(e.name, edef) != edef:
            raise IngestError(f"edge type {e.name!r} is given by several files that disagree "
                              f"on endpoint types or weights: {defs[e.name]} vs {edef}")
    return defs


def edge_source(e: EdgeFileSpec) -> TableSource:
    return detect(e.file, e.format, e.delimiter, e.header)


def id_columns(spec: IngestSpec, inputs):
    """(node type, table source, column) of every id column in the inputs."""
    for e in spec.edges:
        source = edge_source(e)
        yield e.src_type, source, e.src
        yield e.dst_type, source, e.dst
    yield from inputs.id_columns()


def decide_kinds(spec: IngestSpec, inputs, options: BuildOptions) -> dict[str, str]:
    """Resolve "auto" id kinds: "int" when every peeked id column holds integers."""
    kinds = dict(spec.node_types)
    for node_type, source, column in id_columns(spec, inputs):
        if kinds.get(node_type) != "auto":
            continue
        chunk = next(read_chunks(source, [ColumnRequest(column, "raw")], 4096))
        if not _looks_int(chunk.columns[column]):
            kinds[node_type] = "str"
    return {t: ("int" if k == "auto" else k) for t, k in kinds.items()}


def _looks_int(values) -> bool:
    import pyarrow as pa
    import pyarrow.compute as pc
    if isinstance(values, np.ndarray):
        return values.dtype.kind in "iu"
    if pa.types.is_integer(values.type):
        return True
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        return False
    return bool(pc.all(pc.match_substring_regex(values, r"^-?[0-9]{1,18}$")).as_py())


def collect_ids(spec: IngestSpec, inputs, kinds, options: BuildOptions) -> dict:
    """Pass 1: every id column once; returns a mapper per node type."""
    table_limit = max(1 << 16, options.memory_budget // 16)
    collectors = {t: IntCollector(t, table_limit) if k == "int" else StrCollector(t)
                  for t, k in kinds.items()}
    by_source: dict[TableSource, list[tuple[str, str | int]]] = {}
    for node_type, source, column in id_columns(spec, inputs):
        by_source.setdefault(source, []).append((node_type, column))
    for source, cols in by_source.items():
        requests = [ColumnRequest(c, kinds[t]) for t, c in cols]
        for chunk in read_chunks(source, requests, options.chunk_rows):
            for node_type, column in cols:
                _check_id_text(chunk.columns[column], chunk, source, column)
                collectors[node_type].add(chunk.columns[column])
    inputs.collect_implicit(collectors)
    return {t: c.finish() for t, c in collectors.items()}


def _check_id_text(values, chunk, source: TableSource, column) -> None:
    """An empty string is not an id (text files read ids as strings), nor is
    one holding a NUL byte: '2\\x00' would silently turn an int id column
    into strings, and a NUL is never meant (a UTF-16 or binary file is)."""
    if isinstance(values, np.ndarray):
        return
    import pyarrow.compute as pc
    empty = pc.equal(pc.binary_length(values), 0)
    if pc.any(empty).as_py():
        raise IngestError(f"{where(source, _first(empty, chunk))}: column {column!r}: empty "
                          "id; every row needs both endpoints")
    nul = pc.match_substring(values, "\x00")
    if pc.any(nul).as_py():
        row = _first(nul, chunk)
        found = values[row - chunk.first_row].as_py()
        raise IngestError(f"{where(source, row)}: column {column!r}: id {found[:40]!r} holds "
                          "a NUL byte; expected ids of printable text; fix: remove the NUL "
                          "bytes (a UTF-16 file shows them on every line: re-save it as "
                          "UTF-8)")


def _first(mask, chunk) -> int:
    """The data row of the first true entry of a chunk's boolean mask."""
    return chunk.first_row + int(np.flatnonzero(mask.to_numpy(zero_copy_only=False))[0])


def write_scratch_edges(spec: IngestSpec, mappers, scratch: Path,
                        options: BuildOptions) -> dict[str, int]:
    """Pass 2: dense (src, dst[, weight]) appended to scratch files per edge type."""
    rows: dict[str, int] = {}
    for e in spec.edges:
        source, base = edge_source(e), scratch / e.name
        base.mkdir(exist_ok=True)
        requests = [ColumnRequest(e.src, _kind(mappers[e.src_type])),
                    ColumnRequest(e.dst, _kind(mappers[e.dst_type]))]
        if e.weight is not None:
            requests.append(ColumnRequest(e.weight, "float"))
        with open(base / "src.bin", "ab") as fs, open(base / "dst.bin", "ab") as fd, \
                open(base / "w.bin", "ab") as fw:
            for chunk in read_chunks(source, requests, options.chunk_rows):
                for node_type, col, handle in ((e.src_type, e.src, fs), (e.dst_type, e.dst, fd)):
                    _map(mappers[node_type], chunk, col, source).tofile(handle)
                if e.weight is not None:
                    _weights(chunk.columns[e.weight], chunk, source).tofile(fw)
                rows[e.name] = rows.get(e.name, 0) + chunk.num_rows
    return rows


def _kind(mapper) -> str:
    return mapper.kind


def _map(mapper, chunk, column, source: TableSource) -> np.ndarray:
    """Dense ids in the narrowest dtype for the node count (see index_dtype)."""
    dense, missing = mapper.map_dense(chunk.columns[column], index_dtype(len(mapper)))
    if missing >= 0:  # only when a file changed between the two passes
        raise IngestError(f"{where(source, chunk.first_row + missing)}: id not seen "
                          "in the first pass; did the file change during the ingest?")
    return dense


def _weights(values: np.ndarray, chunk, source: TableSource) -> np.ndarray:
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise IngestError(f"{where(source, chunk.first_row + int(bad[0]))}: weight must be a "
                          f"finite number, found {values[bad[0]]}")
    return values.astype(np.float32)


def scratch_source(scratch: Path, edef: EdgeTypeDef, counts, chunk_rows: int):
    base = scratch / edef.name
    src_t, dst_t = index_dtype(counts[edef.src_type]), index_dtype(counts[edef.dst_type])
    total = (base / "src.bin").stat().st_size // src_t.itemsize

    def iterate():
        for a in range(0, total, chunk_rows):
            b = min(a + chunk_rows, total)
            w = read_slice(base / "w.bin", np.float32, a, b) if edef.weighted else None
            yield EdgeChunk(read_slice(base / "src.bin", src_t, a, b),
                            read_slice(base / "dst.bin", dst_t, a, b), w)
    return iterate
