"""`sagewalk synth`: streamed edge lists, deterministic, ingestible."""

from __future__ import annotations

import numpy as np

from graphstore import open_store
from graphstore.synth import generate
from sagewalk.cli import main


def test_tsv_and_npy_agree_with_generate(tmp_path, capsys):
    args = ["synth", "--edges", "3000", "--items", "100", "--users", "400",
            "--communities", "4", "--seed", "3"]
    assert main(args + ["--out", str(tmp_path / "e.tsv")]) == 0
    assert main(args + ["--format", "npy", "--out", str(tmp_path / "e.npy")]) == 0
    g = generate(3000, 100, 400, 4, seed=3)
    lines = (tmp_path / "e.tsv").read_text().splitlines()
    assert lines[0] == "item\tuser" and len(lines) == 3001
    assert lines[1:4] == [f"{i}\t{u}" for i, u in zip(g.items[:3], g.users[:3])]
    arr = np.load(tmp_path / "e.npy")
    assert arr.shape == (3000, 2) and np.array_equal(arr[:, 0], g.items)
    communities = (tmp_path / "e.tsv.communities.tsv").read_text().splitlines()
    assert communities[0] == "item\tcommunity" and communities[6] == "5\t1"
    assert main(["ingest", "--edges", str(tmp_path / "e.npy"), "--src-type", "item",
                 "--dst-type", "user", "--out", str(tmp_path / "s")]) == 0
    assert open_store(tmp_path / "s").edge_types["item-user"].num_edges > 0


def test_stdout_stream_and_bad_arguments(capsys):
    assert main(["synth", "--edges", "5", "--items", "10", "--users", "10",
                 "--communities", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 6
    assert main(["synth", "--edges", "5", "--items", "3", "--communities", "5"]) == 2
    assert "communities <= items" in capsys.readouterr().err
