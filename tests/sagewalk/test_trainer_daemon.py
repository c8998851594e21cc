"""`sagewalk trainer` as a user runs it: bad input, and SIGTERM while no producer is there."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from sagewalk.daemons.trainer import rank_endpoint

ROOT = Path(__file__).resolve().parents[2]


def test_each_rank_gets_its_own_endpoint():
    assert rank_endpoint("ipc:///tmp/t.sock", 0) == "ipc:///tmp/t.sock"
    assert rank_endpoint("ipc:///tmp/t.sock", 2) == "ipc:///tmp/t.sock.rank2"
    assert rank_endpoint("tcp://127.0.0.1:5555", 1) == "tcp://127.0.0.1:5556"


def trainer(tmp_path, *args):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "sagewalk", "-v", "trainer", *args],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def small_store(tmp_path) -> None:
    from graphstore import build_from_arrays
    rng = np.random.default_rng(0)
    build_from_arrays(tmp_path / "store", edges={"rates": ("item", "user", rng.integers(0, 50, 400),
                                                           rng.integers(0, 30, 400))})


def sigterm_once_listening(proc, socket_path: Path) -> str:
    """SIGTERM the trainer once it listens (it is then waiting for producers); its output."""
    deadline = time.monotonic() + 60
    while not socket_path.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    return out


def test_missing_store_is_a_clear_error(tmp_path):
    proc = trainer(tmp_path, "--set", f'graphstore.path="{tmp_path}/nope"')
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out
    assert "sagewalk trainer: error:" in out and "nope" in out and "Traceback" not in out


def test_sigterm_without_producers_checkpoints_and_exits_0(tmp_path):
    small_store(tmp_path)
    run_dir = tmp_path / "run"
    proc = trainer(tmp_path, "--run-dir", str(run_dir), "--set", 'graphstore.path="store"',
                   "--set", f'worker.trainer_endpoint="ipc://{tmp_path}/t.sock"',
                   "--set", "monitoring.trainer_port=0", "--set", "sampler.batch_size=16")
    out = sigterm_once_listening(proc, tmp_path / "t.sock")
    assert proc.returncode == 0, out
    summary = json.loads((run_dir / "run_summary.json").read_text())
    assert summary["stop_reason"] == "SIGTERM" and summary["steps"] == 0
    assert list((run_dir / "checkpoints").glob("checkpoint-*.pt"))
    assert (run_dir / "model.pt").exists()
    assert "resolved config" in out and "[trainer]" in out


def test_only_checkpoint_damaged_refuses_to_start_and_fresh_sets_it_aside(tmp_path):
    small_store(tmp_path)
    run_dir = tmp_path / "run"
    damaged = run_dir / "checkpoints" / "checkpoint-000000003.pt"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"SAGEWALK-CKPT-1\ncut short")
    args = ["--run-dir", str(run_dir), "--set", 'graphstore.path="store"',
            "--set", f'worker.trainer_endpoint="ipc://{tmp_path}/t.sock"',
            "--set", "monitoring.trainer_port=0", "--set", "sampler.batch_size=16"]
    proc = trainer(tmp_path, *args)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out
    assert "checkpoint-000000003.pt" in out and "--fresh" in out and "Traceback" not in out
    assert damaged.exists()  # refused: nothing moved, nothing trained

    proc = trainer(tmp_path, *args, "--fresh")
    out = sigterm_once_listening(proc, tmp_path / "t.sock")
    assert proc.returncode == 0, out
    (aside,) = (run_dir / "checkpoints").glob("set-aside-*")
    assert (aside / damaged.name).read_bytes() == b"SAGEWALK-CKPT-1\ncut short"
    assert "moved 1 checkpoint(s) aside" in out
