"""Chunked readers for edge and node tables: CSV/TSV, Parquet and .npy.

`read_chunks(source, requests, chunk_rows)` yields `TableChunk`s holding just
the requested columns, converted as requested ("int" -> int64 numpy, "float"
-> float64 numpy, "str" -> arrow large_string, "raw" -> arrow array).  Every
input error becomes an IngestError naming file and line (or row), what was
expected and what was found.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from graphstore.errors import IngestError
from graphstore.convert import to_kind

FORMATS = ("csv", "tsv", "parquet", "npy")


@dataclass(frozen=True)
class TableSource:
    path: Path
    format: str                  # one of FORMATS
    delimiter: str = ","
    header: bool = True


@dataclass(frozen=True)
class ColumnRequest:
    column: str | int            # name, or 0-based position
    kind: str                    # "int", "float", "str" or "raw"


@dataclass(frozen=True)
class TableChunk:
    columns: dict               # ColumnRequest.column -> array
    first_row: int              # 0-based data row of the chunk's first row
    num_rows: int


def detect(path: str | Path, format: str | None = None, delimiter: str | None = None,
           header: bool = True) -> TableSource:
    """Format by `format`, else by extension, else by sniffing the first line."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise IngestError(f"{path}: file is empty; expected a header line and data rows")
    suffix = path.suffix.lower().lstrip(".")
    fmt = format or {"tab": "tsv", "txt": None, "pq": "parquet"}.get(suffix, suffix)
    if fmt not in FORMATS:
        fmt = "tsv" if "\t" in _first_line(path) else "csv"
    if delimiter is None:
        delimiter = "\t" if fmt == "tsv" else ","
    return TableSource(path, fmt, delimiter, header)


def _first_line(path: Path) -> str:
    with open(path, "r", encoding="utf-8", errors="replace") as handle:
        return handle.readline()


def column_names(source: TableSource) -> list[str]:
    if source.format in ("csv", "tsv"):
        with open(source.path, newline="", encoding="utf-8", errors="replace") as handle:
            first = next(csv.reader(handle, delimiter=source.delimiter), [])
        return first if source.header else [str(i) for i in range(len(first))]
    if source.format == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq
        try:
            return list(pq.ParquetFile(source.path).schema_arrow.names)
        except (pa.ArrowException, OSError) as err:
            raise IngestError(f"{source.path}: not a readable Parquet file: {err}") from None
    array = _load_npy(source.path)
    if array.dtype.names:
        return list(array.dtype.names)
    return [str(i) for i in range(1 if array.ndim == 1 else array.shape[1])]


def resolve(source: TableSource, column: str | int) -> str:
    """A requested column as the file's column name; errors list what exists."""
    names = column_names(source)
    if isinstance(column, int) and not isinstance(column, bool):
        if 0 <= column < len(names):
            return names[column]
        raise IngestError(f"{source.path}: column #{column} requested, the file has "
                          f"{len(names)} columns: {', '.join(names)}")
    if column in names:
        return column
    raise IngestError(f"{source.path}: no column {column!r}; columns are: {', '.join(names)}")


def read_chunks(source: TableSource, requests: Sequence[ColumnRequest],
                chunk_rows: int) -> Iterator[TableChunk]:
    names = {r.column: resolve(source, r.column) for r in requests}
    reader = {"csv": _csv_batches, "tsv": _csv_batches, "parquet": _parquet_batches,
              "npy": _npy_batches}[source.format]
    kinds: dict[str, str] = {}
    for r in requests:  # a column read as two kinds stays text
        kinds[names[r.column]] = r.kind if kinds.get(names[r.column], r.kind) == r.kind else "str"
    first = 0
    for batch in reader(source, kinds, chunk_rows):
        if not batch:
            continue
        cols = {r.column: to_kind(source, batch[names[r.column]], r.kind, names[r.column],
                                  first) for r in requests}
        rows = len(batch[next(iter(batch))])
        yield TableChunk(cols, first, rows)
        first += rows
    if first == 0:
        raise IngestError(f"{source.path}: no data rows (only a header?); expected at "
                          "least one row")


def _csv_batches(source: TableSource, kinds: dict[str, str], chunk_rows: int):
    """Record batches of the requested columns, numeric ones parsed by arrow."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    bad: list = []

    def on_invalid(row):  # the first malformed row, with its line number
        bad.append(row)
        return "error"
    header_names = column_names(source)
    arrow = {"int": pa.int64(), "float": pa.float64()}
    read = pcsv.ReadOptions(use_threads=False, block_size=max(1 << 16, chunk_rows * 2),
                            column_names=None if source.header else header_names)
    # TSV has no quoting convention: a title like '"Cats" (1998)' is literal text.
    parse = pcsv.ParseOptions(delimiter=source.delimiter, invalid_row_handler=on_invalid,
                              quote_char=False if source.format == "tsv" else '"')
    convert = pcsv.ConvertOptions(
        include_columns=list(kinds), strings_can_be_null=False,
        column_types={n: arrow.get(k, pa.string()) for n, k in kinds.items()})
    try:
        for batch in pcsv.open_csv(source.path, read_options=read, parse_options=parse,
                                   convert_options=convert):
            yield {n: batch.column(n) for n in kinds}
    except pa.ArrowInvalid as err:
        if not bad and any(k in arrow for k in kinds.values()):
            _locate_conversion_error(source, kinds, chunk_rows)
        raise _csv_error(source, bad, err, len(header_names)) from None


def _locate_conversion_error(source: TableSource, kinds: dict[str, str], chunk_rows: int):
    """Arrow does not say which row failed to convert: read the columns as
    text and let to_kind name the file, line and value."""
    first = 0
    for batch in _csv_batches(source, {n: "str" for n in kinds}, chunk_rows):
        for name, kind in kinds.items():
            to_kind(source, batch[name], kind, name, first)
        first += len(batch[next(iter(batch))])


def _csv_error(source, bad, err, ncols) -> IngestError:
    if bad:
        row = bad[0]
        line = row.number if row.number is not None else "?"
        return IngestError(f"{source.path}:{line}: expected {row.expected_columns} "
                           f"columns, found {row.actual_columns}: {row.text!r}")
    return IngestError(f"{source.path}: cannot read as {source.format.upper()} "
                       f"({ncols} columns from the header): {err}")


def _parquet_batches(source: TableSource, kinds: dict[str, str], chunk_rows: int):
    names = list(kinds)
    import pyarrow as pa
    import pyarrow.parquet as pq
    try:
        parquet = pq.ParquetFile(source.path)
        for batch in parquet.iter_batches(batch_size=chunk_rows, columns=names):
            yield {n: batch.column(n) for n in names}
    except (pa.ArrowException, OSError) as err:
        raise IngestError(f"{source.path}: not a readable Parquet file: {err}") from None


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as err:
        raise IngestError(f"{path}: not a readable .npy array: {err}") from None


def npy_layout(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data offset) of a C-ordered .npy file."""
    with open(path, "rb") as handle:
        try:
            version = np.lib.format.read_magic(handle)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise ValueError(f"unsupported .npy version {version}")
            shape, fortran, dtype = read_header(handle)
        except ValueError as err:
            raise IngestError(f"{path}: not a readable .npy array: {err}") from None
        if fortran or dtype.hasobject:
            raise IngestError(f"{path}: expected a C-ordered numeric array, got "
                              f"{'Fortran order' if fortran else dtype}; re-save it with "
                              "numpy.save(path, numpy.ascontiguousarray(a))")
        return shape, dtype, handle.tell()


def _npy_batches(source: TableSource, kinds: dict[str, str], chunk_rows: int):
    """Row blocks read with plain reads: a memory map would leave every page
    of the input resident, counted in this process's RSS."""
    names = list(kinds)
    shape, dtype, offset = npy_layout(source.path)
    width = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    for start in range(0, shape[0] if shape else 0, chunk_rows):
        rows = min(chunk_rows, shape[0] - start)
        block = np.fromfile(source.path, dtype=dtype, count=rows * width,
                            offset=offset + start * width * dtype.itemsize)
        if dtype.names:
            yield {n: np.ascontiguousarray(block[n]) for n in names}
        elif len(shape) == 1:
            yield {n: block for n in names}
        else:
            block = block.reshape(rows, width)
            yield {n: np.ascontiguousarray(block[:, int(n)]) for n in names}
