"""`sagewalk ingest` as a user runs it: success and every kind of bad input
(clear message on stderr, exit 2, no traceback, no store left behind)."""

from __future__ import annotations

import json


from graphstore import open_store
from sagewalk.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_simple_form_builds_and_reports(tmp_path, capsys):
    (tmp_path / "e.tsv").write_text("item\tuser\trating\n1\tu1\t4\n2\tu1\t5\n1\tu1\t1\n")
    code, out, _ = run(capsys, "ingest", "--edges", str(tmp_path / "e.tsv"), "--src-type",
                       "item", "--dst-type", "user", "--out", str(tmp_path / "s"))
    assert code == 0
    assert "2 kept of 3 rows; dropped 1 duplicates" in out
    store = open_store(tmp_path / "s")
    assert store.edge_types["item-user"].weighted
    assert store.node_types == {"item": 2, "user": 1}


def test_json_report_and_config_policy(tmp_path, capsys):
    (tmp_path / "e.csv").write_text("a,b\nx,y\nx,y\n")
    code, out, _ = run(capsys, "ingest", "--edges", str(tmp_path / "e.csv"), "--src-type", "a",
                       "--dst-type", "b", "--out", str(tmp_path / "s"), "--json",
                       "--set", "graphstore.duplicates=keep")
    assert code == 0
    assert json.loads(out)["edge_types"]["a-b"]["edges_out"] == 2


def bad_ingest(tmp_path, capsys, *argv):
    out_dir = tmp_path / "store"
    code, _, err = run(capsys, "ingest", *argv, "--out", str(out_dir))
    assert code == 2
    assert not out_dir.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".sagewalk-build")]
    return err


def simple(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    return ["--edges", str(tmp_path / name), "--src-type", "item", "--dst-type", "user"]


def test_malformed_row_names_file_line_expected_and_found(tmp_path, capsys):
    err = bad_ingest(tmp_path, capsys, *simple(tmp_path, "e.tsv", "a\tb\n1\t2\n3\n4\t5\n"))
    assert "e.tsv:3: expected 2 columns, found 1: '3'" in err


def test_empty_file(tmp_path, capsys):
    err = bad_ingest(tmp_path, capsys, *simple(tmp_path, "e.tsv", ""))
    assert "e.tsv: file is empty" in err


def test_header_only(tmp_path, capsys):
    err = bad_ingest(tmp_path, capsys, *simple(tmp_path, "e.csv", "a,b\n"))
    assert "e.csv: no data rows" in err


def test_missing_file_and_missing_types(tmp_path, capsys):
    err = bad_ingest(tmp_path, capsys, "--edges", str(tmp_path / "nope.tsv"), "--src-type",
                     "a", "--dst-type", "b")
    assert "nope.tsv: no such file" in err
    err = bad_ingest(tmp_path, capsys, "--edges", str(tmp_path / "nope.tsv"))
    assert "--edges needs --src-type and --dst-type" in err


def write_spec(tmp_path, body):
    (tmp_path / "e.tsv").write_text("movie\tuser\nm1\t1\nm2\tx7\n")
    (tmp_path / "spec.toml").write_text(body)
    return ["--spec", str(tmp_path / "spec.toml")]


def test_unknown_node_type_in_spec(tmp_path, capsys):
    err = bad_ingest(tmp_path, capsys, *write_spec(tmp_path, """
[[edges]]
file = "e.tsv"
src_type = "movie"
dst_type = "user"
[[nodes]]
type = "film"
file = "e.tsv"
"""))
    assert "unknown node type 'film' in nodes[0]" in err and "movie, user" in err


def test_undeclared_edge_endpoint_type(tmp_path, capsys):
    err = bad_ingest(tmp_path, capsys, *write_spec(tmp_path, """
[node_types.movie]
[[edges]]
file = "e.tsv"
src_type = "movie"
dst_type = "user"
"""))
    assert "uses unknown node type 'user'" in err


def test_ids_that_do_not_parse_as_declared(tmp_path, capsys):
    err = bad_ingest(tmp_path, capsys, *write_spec(tmp_path, """
[node_types.movie]
ids = "str"
[node_types.user]
ids = "int"
[[edges]]
file = "e.tsv"
src_type = "movie"
dst_type = "user"
"""))
    assert "e.tsv:3: column 'user': expected an integer, found 'x7'" in err


def test_spec_errors_unknown_key_and_column(tmp_path, capsys):
    err = bad_ingest(tmp_path, capsys, *write_spec(tmp_path, """
[[edges]]
file = "e.tsv"
src_type = "movie"
dst_type = "user"
wieght = "w"
"""))
    assert "unknown key 'wieght'" in err
    err = bad_ingest(tmp_path, capsys, *write_spec(tmp_path, """
[[edges]]
file = "e.tsv"
src_type = "movie"
dst_type = "user"
weight = "stars"
"""))
    assert "no column 'stars'; columns are: movie, user" in err


def test_existing_store_needs_overwrite(tmp_path, capsys):
    args = simple(tmp_path, "e.tsv", "a\tb\n1\t2\n")
    assert run(capsys, "ingest", *args, "--out", str(tmp_path / "s"))[0] == 0
    code, _, err = run(capsys, "ingest", *args, "--out", str(tmp_path / "s"))
    assert code == 2 and "already exists" in err and "--overwrite" in err
    assert run(capsys, "ingest", *args, "--out", str(tmp_path / "s"), "--overwrite")[0] == 0


def test_sigterm_mid_build_leaves_nothing(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    assert main(["synth", "--edges", "3000000", "--items", "30000", "--users", "300000",
                 "--out", str(tmp_path / "e.tsv")]) == 0
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "sagewalk", "ingest", "--edges",
                             str(tmp_path / "e.tsv"), "--src-type", "item", "--dst-type",
                             "user", "--out", str(out / "store")], stderr=subprocess.PIPE)
    deadline = time.time() + 30
    while not any(out.iterdir()) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    assert proc.poll() is None, "the build finished before it could be interrupted"
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and b"interrupted" in err
    assert list(out.iterdir()) == []


def test_empty_id_float_npy_ids_and_bad_parquet(tmp_path, capsys):
    import numpy as np
    err = bad_ingest(tmp_path, capsys, *simple(tmp_path, "e.csv", "a,b\n1,x\n,y\n"))
    assert "e.csv:3: column 0: empty id" in err
    np.save(tmp_path / "f.npy", np.array([[1.5, 2.0]]))
    err = bad_ingest(tmp_path, capsys, "--edges", str(tmp_path / "f.npy"), "--src-type", "a",
                     "--dst-type", "b")
    assert "f.npy: row 0: column '0': expected an integer, found float64 values" in err
    err = bad_ingest(tmp_path, capsys, *simple(tmp_path, "g.parquet", "not parquet"))
    assert "g.parquet: not a readable Parquet file" in err
    err = bad_ingest(tmp_path, capsys, *simple(tmp_path, "w.tsv", "a\tb\tw\n1\t2\tinf\n"))
    assert "w.tsv:2: weight must be a finite number, found inf" in err


def test_spec_value_of_the_wrong_type(tmp_path, capsys):
    err = bad_ingest(tmp_path, capsys, *write_spec(tmp_path, """
[[edges]]
file = "e.tsv"
src_type = "movie"
dst_type = "user"
[[nodes]]
type = "movie"
file = "e.tsv"
multi_hot = "genres"
"""))
    assert "nodes[0].multi_hot: expected a table of column = separator, got 'genres'" in err
