"""`sagewalk train --minutes` through the real daemons on a small planted store:
model.pt and run_summary.json land in run_dir and the learning rate ends at
min_lr_ratio * lr; `sagewalk embed` with the same config file then walks the
neighbourhoods the run picked, not the file's defaults.  Nothing is asserted
about how many steps the machine takes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.small_store import write_store_and_config

ROOT = Path(__file__).resolve().parents[2]


def test_train_within_a_budget_ends_at_the_final_rate(tmp_path):
    cfg = write_store_and_config(tmp_path)
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

    # The user's file sets no walks; the run picked them.  Embedding with the
    # same file walks what the model was trained on.
    walk_length = next(c["value"] for c in summary["autoplan"]["choices"]
                       if c["setting"] == "sampler.walk_length")
    assert walk_length != 50                      # the config default, which train overrode
    done = subprocess.run([sys.executable, "-m", "sagewalk", "embed", "--config", str(cfg),
                           "--no-progress", "--processes", "1"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert f"sampler.walk_length = {walk_length} (the config has 50)" in done.stderr
    progress = json.loads((tmp_path / "run" / "embed" / "progress.json").read_text())
    assert progress["identity"]["sampler"]["walk_length"] == walk_length
