"""`sagewalk train --minutes` through the real daemons on a small planted store:
model.pt and run_summary.json land in run_dir and the learning rate ends at
min_lr_ratio * lr.  Nothing is asserted about how many steps the machine takes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_train_within_a_budget_ends_at_the_final_rate(tmp_path):
    from graphstore import build_from_arrays
    from graphstore.synth import generate
    g = generate(3000, 200, 400, 4, seed=1, p_in=0.95)
    build_from_arrays(tmp_path / "store", edges={"rates": ("item", "user", g.items, g.users)},
                      node_counts={"item": 200, "user": 400},
                      features={"item": np.random.default_rng(0).standard_normal(
                          (200, 4)).astype(np.float32)})
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[graphstore]\npath = "{tmp_path / "store"}"\n[worker]\nproducers = 1\n'
                   f'[trainer]\nrun_dir = "{tmp_path / "run"}"\nhidden_dim = 16\n'
                   'embedding_dim = 16\n')
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "sagewalk", "train", "--config", str(cfg),
                           "--minutes", "0.05"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "picked from the store: sampler.batch_size = 64" in done.stdout
    summary = json.loads((tmp_path / "run" / "run_summary.json").read_text())
    assert (tmp_path / "run" / "model.pt").exists()
    assert summary["stop_reason"] in ("time_budget", "completed") and summary["steps"] > 0
    assert summary["time_budget_s"] == pytest.approx(3.0)
    assert summary["lr_final"] == pytest.approx(summary["lr_planned_final"], rel=1e-6)
    assert summary["lr_planned_final"] == pytest.approx(0.01 * 0.1)
    assert summary["autoplan"]["store"]["items"] == 200
    assert sum(e["batches_done"] for e in summary["epochs"]) == summary["steps"]
