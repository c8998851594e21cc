"""Converting one column of a chunk to the kind an ingest asked for, and
pointing at the exact row (`where`) when a value does not fit."""

from __future__ import annotations

import numpy as np

from graphstore.errors import IngestError

def where(source, row: int) -> str:
    """Human position of 0-based data row `row` of a TableSource (file:line
    for text files)."""
    if source.format in ("csv", "tsv"):
        return f"{source.path}:{row + 1 + int(source.header)}"
    return f"{source.path}: row {row}"


_EXPECTED = {"int": "an integer", "float": "a number", "str": "a string", "raw": "a value"}


def to_kind(source, values, kind: str, name: str, first_row: int):
    """int -> int64 numpy; float -> float64 numpy; str -> arrow large_string;
    raw -> arrow array.  first_row is the chunk's 0-based data row."""
    import pyarrow as pa
    if isinstance(values, np.ndarray):
        return _numpy_to_kind(source, values, kind, name, first_row)
    if values.null_count:
        _raise_at(source, name, first_row + _first_null(values), kind, "an empty value")
    if kind == "raw":
        return values
    if kind == "str":
        return values.cast(pa.large_string())
    target = pa.int64() if kind == "int" else pa.float64()
    if values.type == target:
        return values.to_numpy(zero_copy_only=False)
    try:
        return values.cast(target).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        index, found = locate_bad_value(values, kind)
        _raise_at(source, name, first_row + index, kind, repr(found))


def _numpy_to_kind(source, values: np.ndarray, kind: str, name: str, first_row: int):
    import pyarrow as pa
    if kind == "int":
        if values.dtype.kind == "i" or (values.dtype.kind == "u" and values.dtype.itemsize < 8):
            return values  # any signed width: the id collectors and mappers accept them
        _raise_at(source, name, first_row, kind, f"{values.dtype} values")
    if kind == "float":
        if values.dtype.kind in "iuf":
            return values.astype(np.float64, copy=False)
        _raise_at(source, name, first_row, kind, f"{values.dtype} values")
    if kind == "str" and values.dtype.kind not in "iuUS":
        _raise_at(source, name, first_row, "int", f"{values.dtype} values (ids in a .npy "
                  "must be integers)")
    array = pa.array(values)
    return array.cast(pa.large_string()) if kind == "str" else array


def _first_null(values) -> int:
    return int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0])


def locate_bad_value(values, kind: str) -> tuple[int, object]:
    """(index, value) of the first value that does not parse as `kind`."""
    for i, value in enumerate(values.to_pylist()):
        try:
            int(value) if kind == "int" else float(value)
        except (TypeError, ValueError, OverflowError):
            return i, value
    return 0, values[0].as_py()


def _raise_at(source, name: str, row: int, kind: str, found: str):
    raise IngestError(f"{where(source, row)}: column {name!r}: expected {_EXPECTED[kind]}, "
                      f"found {found}; fix the file or declare the column's kind in the spec")
