"""benchmarks/disk_walks.py: each kernel over the same calls from a cold cache."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from graphstore import build_from_arrays

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "disk_walks.py"


def test_every_mode_walks_the_same_calls_and_auto_walks_plain_where_the_store_fits(tmp_path):
    rng = np.random.default_rng(0)
    store = build_from_arrays(
        tmp_path / "store",
        edges={"rates": ("item", "user", rng.integers(0, 400, 5000), rng.integers(0, 90, 5000))},
        node_counts={"item": 400, "user": 90})
    done = subprocess.run([sys.executable, str(SCRIPT), str(store.path), "--seeds", "50",
                           "--calls", "3", "--walks", "4", "--length", "3",
                           "--read-seconds", "0.2", "--resident-mb", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["calls"] == 3 and out["reads_per_s_qd1"] > 0
    assert out["plain"]["paged"] is False and out["paged"]["paged"] is True
    assert out["auto"]["paged"] is False      # 400 items fit half of any machine's memory
    assert "calls_paged" not in out["auto"]
    for mode in ("plain", "paged", "paged_resident", "auto"):
        assert out[mode]["steps_per_s"] > 0
