"""Ids holding a NUL byte are refused at ingest with the file and line: one
'2\\x00' used to turn a whole int id column into strings, silently."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphstore.store_parts import BuildOptions
from graphstore.errors import IngestError
from graphstore.ingest import ingest
from graphstore.spec import simple_spec

OPTIONS = BuildOptions(memory_budget=1 << 20, chunk_rows=7)  # several chunks per file


def test_one_nul_in_an_int_column_names_file_line_and_fix(tmp_path):
    (tmp_path / "e.tsv").write_text("item\tuser\n1\t2\n3\t2\x00\n5\t6\n")
    with pytest.raises(IngestError) as err:
        ingest(simple_spec(tmp_path / "e.tsv", "item", "user"), tmp_path / "s", OPTIONS)
    text = str(err.value)
    assert text.startswith(f"{tmp_path / 'e.tsv'}:3: column 1: id '2\\x00' holds a NUL byte")
    assert "expected ids of printable text" in text and "fix:" in text
    assert not (tmp_path / "s").exists()


def test_nul_in_a_parquet_string_column_names_the_row(tmp_path):
    table = pa.table({"a": ["x", "y", "z\x00z"], "b": ["p", "q", "r"]})
    pq.write_table(table, tmp_path / "e.parquet")
    with pytest.raises(IngestError, match=r"e.parquet: row 2: column 0: id 'z\\x00z' holds "
                                          "a NUL byte"):
        ingest(simple_spec(tmp_path / "e.parquet", "a", "b"), tmp_path / "s", OPTIONS)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), min_size=1,
                     max_size=40),
       data=st.data(), delimiter=st.sampled_from(["\t", ","]),
       strings=st.booleans())
def test_a_nul_anywhere_in_any_id_is_refused_at_its_line(tmp_path, rows, data, delimiter,
                                                         strings):
    cells = [[f"u{a}" if strings else str(a), f"m{b}" if strings else str(b)] for a, b in rows]
    line = data.draw(st.integers(0, len(rows) - 1), label="row")
    col = data.draw(st.integers(0, 1), label="column")
    text = cells[line][col]
    at = data.draw(st.integers(0, len(text)), label="offset")
    cells[line][col] = text[:at] + "\x00" + text[at:]
    suffix = "tsv" if delimiter == "\t" else "csv"
    path = tmp_path / f"e.{suffix}"
    path.write_text("a" + delimiter + "b\n" + "".join(delimiter.join(r) + "\n" for r in cells))
    out = tmp_path / "s"
    with pytest.raises(IngestError, match=rf"e.{suffix}:{line + 2}: column {col}: id .* "
                                          "holds a NUL byte"):
        ingest(simple_spec(path, "a", "b"), out, OPTIONS)
    assert not out.exists()
