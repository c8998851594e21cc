"""`sagewalk store info|verify` and what opening a damaged store says."""

from __future__ import annotations

import json

import numpy as np

from graphstore import build_from_arrays
from sagewalk.cli import main


def make(tmp_path):
    return build_from_arrays(tmp_path / "s", edges={
        "rates": ("item", "user", [0, 0, 1, 2], [0, 1, 1, 1], [1.0, 2.0, 3.0, 4.0])},
        features={"item": np.ones((3, 4))}, attributes={"item": {"title": ["a", "b", "c"]}})


def test_info_text_and_json(tmp_path, capsys):
    make(tmp_path)
    assert main(["store", "info", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "nodes item: 3" in out and "rates: item -> user, 4 edges, weighted" in out
    assert main(["store", "info", str(tmp_path / "s"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["node_types"] == {"item": 3, "user": 2}
    rates = info["edge_types"]["rates"]
    assert rates["out_degree"]["max"] == 2 and rates["in_degree"]["max"] == 3
    assert rates["in_degree"]["mean"] == 2.0 and info["features"] == {"item": [3, 4]}


def test_verify_detects_same_size_edit(tmp_path, capsys):
    store = make(tmp_path)
    assert main(["store", "verify", str(store.path)]) == 0
    assert "ok" in capsys.readouterr().out
    path = store.path / store.manifest["edge_types"]["rates"]["forward"]["weights"]["file"]
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))
    assert main(["store", "verify", str(store.path)]) == 2
    err = capsys.readouterr().err
    assert "do not match their manifest hash" in err and "weights.bin" in err
    assert "sagewalk ingest" in err and "Traceback" not in err


def test_truncated_and_other_version(tmp_path, capsys):
    store = make(tmp_path)
    path = store.path / store.manifest["features"]["item"]["array"]["file"]
    path.write_bytes(path.read_bytes()[:10])
    assert main(["store", "info", str(store.path)]) == 2
    assert "truncated or was edited" in capsys.readouterr().err
    manifest = json.loads((store.path / "manifest.json").read_text())
    manifest["format_version"] = 99
    (store.path / "manifest.json").write_text(json.dumps(manifest))
    assert main(["store", "verify", str(store.path)]) == 2
    assert "format version 99" in capsys.readouterr().err


def test_not_a_store(tmp_path, capsys):
    assert main(["store", "info", str(tmp_path)]) == 2
    assert "not a graph store" in capsys.readouterr().err
