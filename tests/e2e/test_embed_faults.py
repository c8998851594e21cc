"""A worker killed (kill -9) during `sagewalk embed`: the job stops with a
clear message, a rerun redoes only the unfinished chunks (a chunk is named by
its node range and rewrites the same rows, so redoing one is idempotent), the
result equals an uninterrupted run and the export lists every node id once.

Local processes always; Ray (`--engine ray`) when `ray[data]` is installed,
marked slow (Ray's start-up alone takes tens of seconds here).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from procs import cmdline, descendants

from graphstore import build_from_arrays, open_store
from gpu_consumer.model import build_model, export_model
from sagewalk.config import load
from serving import layerwise

ROOT = Path(__file__).resolve().parents[2]
ITEMS = 3000
CHUNK = 50


@pytest.fixture
def job(tmp_path):
    rng = np.random.default_rng(5)
    items, users = rng.integers(0, ITEMS, 30000), rng.integers(0, 2000, 30000)
    build_from_arrays(tmp_path / "store", edges={"rates": ("item", "user", items, users)},
                      node_counts={"item": ITEMS, "user": 2000},
                      features={"item": rng.standard_normal((ITEMS, 8)).astype(np.float32)})
    config = tmp_path / "sagewalk.toml"
    config.write_text(f'[graphstore]\npath = "{tmp_path}/store"\n'
                      "[sampler]\nnum_walks = 4\nwalk_length = 3\nnum_neighbors = 4\n"
                      f'[trainer]\nhidden_dim = 16\nembedding_dim = 8\nrun_dir = "{tmp_path}/run"\n')
    cfg = load(config)
    export_model(tmp_path / "run", build_model(cfg.trainer, open_store(tmp_path / "store"),
                                               cfg.sampler))
    return tmp_path, config, cfg


def embed(config: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "sagewalk", "-v", "embed", "--config",
                             str(config), "--out", str(out), "--chunk", str(CHUNK),
                             "--no-progress", *extra], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def done_chunks(out: Path) -> int:
    try:
        state = json.loads((out / "progress.json").read_text())
    except (OSError, ValueError):
        return 0  # not written yet, or being replaced
    return sum(len(v) for v in state["done"].values())


def kill_a_worker_mid_job(proc: subprocess.Popen, out: Path, is_worker, total: int) -> int:
    """Once a few chunks are done (and most are not), kill -9 one worker."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
        workers = [p for p in descendants(proc.pid) if is_worker(p)]
        done = done_chunks(out)
        if workers and 2 <= done:
            assert done < total // 2, f"{done} of {total} chunks done before the kill"
            os.kill(workers[0], signal.SIGKILL)
            return done
        time.sleep(0.002)
    raise AssertionError("the embed job never got two chunks done")


def skipped(text: str) -> int:
    """From `sagewalk embed`'s line '... N chunks run, M already done -> DIR'."""
    return int(text.split(" already done")[0].rsplit(",", 1)[1].split()[0])


def check_output(tmp: Path, cfg, exported: Path) -> None:
    from serving import embed as E
    ids = (exported / "ids.txt").read_text().splitlines()
    expected = open_store(tmp / "store").ids("item").to_external(np.arange(ITEMS))
    assert len(ids) == len(set(ids)) == ITEMS and sorted(ids) == sorted(map(str, expected))
    ref = E.embed_all(E.EmbedJob(str(tmp / "store"), str(tmp / "run"), str(tmp / "ref"),
                                 cfg.sampler, chunk_nodes=CHUNK, processes=1),
                      progress=False)
    got = np.load(exported / "embeddings.npy")
    # same chunks, same arithmetic: a redone chunk equals the uninterrupted one
    np.testing.assert_allclose(got, np.asarray(ref.embeddings()), rtol=0, atol=1e-6)


@pytest.mark.slow  # three embed jobs with spawned workers: minutes on a loaded machine
def test_local_worker_killed_rerun_skips_finished_chunks(job):
    tmp, config, cfg = job
    out, exported = tmp / "job", tmp / "export"
    total = len(layerwise.stages(2)) * (ITEMS // CHUNK)
    proc = embed(config, out, "--processes", "2")

    def is_worker(pid: int) -> bool:
        return b"spawn_main" in cmdline(pid) and b"resource_tracker" not in cmdline(pid)
    done_before = kill_a_worker_mid_job(proc, out, is_worker, total)
    text = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == 2, text[-3000:]
    assert "an embedding worker process died" in text and "rerun the same command" in text
    assert done_chunks(out) >= done_before
    again = embed(config, out, "--processes", "2", "--export", str(exported))
    text = again.communicate(timeout=300)[0].decode()
    assert again.returncode == 0, text[-3000:]
    assert skipped(text) >= done_before, text  # chunks finished before the kill are skipped
    check_output(tmp, cfg, exported)


@pytest.mark.slow
def test_ray_actor_killed_its_shard_is_retried_and_a_rerun_skips_everything(job):
    pytest.importorskip("ray.data")
    tmp, config, cfg = job
    out, exported = tmp / "job", tmp / "export"
    total = len(layerwise.stages(2)) * (ITEMS // CHUNK)
    proc = embed(config, out, "--engine", "ray", "--export", str(exported))
    done_before = kill_a_worker_mid_job(proc, out, lambda p: b"_ShardWriter" in cmdline(p),
                                        total)
    # the actor is restarted and its shard retried (SHARD_RETRIES): the job finishes
    text = proc.communicate(timeout=600)[0].decode()
    assert proc.returncode == 0, text[-3000:]
    assert done_chunks(out) == total
    assert done_before >= 2
    check_output(tmp, cfg, exported)
    again = embed(config, out, "--engine", "ray")
    text = again.communicate(timeout=300)[0].decode()
    assert again.returncode == 0 and f"0 chunks run, {total} already done" in text, text
