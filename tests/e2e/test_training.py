"""Train through the real daemons on a store with planted communities.

`sagewalk sampler` (producer processes) and `sagewalk trainer` run as separate
processes over ipc:// sockets.  The trainer is stopped with SIGTERM half way
(it must checkpoint and exit 0) and started again (it must resume, not
restart); at the end the exported model must put items of one community next
to each other far more often than chance, and run_summary.json must account
for every batch exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
ITEMS, USERS, COMMUNITIES = 400, 800, 4
EPOCHS = 20

CONFIG = """\
[graphstore]
path = "{tmp}/store"
[sampler]
batch_size = 64
easy_negatives = 64
num_walks = 10
walk_length = 10
num_neighbors = 10
[worker]
producers = 2
trainer_endpoint = "ipc://{tmp}/trainer.sock"
control_endpoint = "ipc://{tmp}/control.sock"
[trainer]
hidden_dim = 32
embedding_dim = 16
id_embedding_buckets = 2048
lr = 0.01
epochs = {epochs}
run_dir = "{tmp}/run"
checkpoint_every_s = 1.0
validate_every = 60
validation_queries = 200
[monitoring]
trainer_port = {port}
sampler_port = 0
producer_base_port = 0
"""


def build_store(tmp: Path) -> np.ndarray:
    from graphstore import build_from_arrays
    from graphstore.synth import generate

    graph = generate(8000, ITEMS, USERS, COMMUNITIES, seed=1, p_in=0.95,
                     item_exponent=0.5, user_exponent=0.5)
    noise = np.random.default_rng(0).standard_normal((ITEMS, 8)).astype(np.float32)
    build_from_arrays(tmp / "store", edges={"rates": ("item", "user", graph.items, graph.users)},
                      node_counts={"item": ITEMS, "user": USERS}, features={"item": noise})
    return graph.communities


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(verb: str, config: Path, log: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "sagewalk", "-v", verb, "--config",
                             str(config)], cwd=ROOT, env=env, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)


def wait_for(predicate, timeout: float, what: str, procs=()) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        for p in procs:
            assert p.poll() is None, f"{p.args[3]} exited with {p.returncode} while waiting " \
                                     f"for {what}"
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def community_precision(run_dir: Path, store_path: Path, communities: np.ndarray) -> float:
    """Share of each item's 10 nearest items (by the exported model) in its community."""
    import torch

    from gpu_consumer.model import load_model
    from gpu_consumer.validate import embed_nodes
    from graphstore import open_store
    from sagewalk.config import load
    from worker.assemble import BatchBuilder

    config = load(run_dir.parent / "sagewalk.toml")
    builder = BatchBuilder(open_store(store_path), config.sampler)
    model = load_model(run_dir)
    with torch.no_grad():
        z = embed_nodes(model, builder, np.arange(ITEMS))
    scores = z @ z.T
    scores.fill_diagonal_(-2.0)
    top = scores.topk(10, dim=1).indices.numpy()
    return float((communities[top] == communities[:, None]).mean())


@pytest.mark.slow
def test_daemons_train_resume_and_separate_communities(tmp_path):
    communities = build_store(tmp_path)
    port = free_port()
    config = tmp_path / "sagewalk.toml"
    config.write_text(CONFIG.format(tmp=tmp_path, epochs=EPOCHS, port=port))
    log = tmp_path / "daemons.log"
    run_dir = tmp_path / "run"
    sampler = start("sampler", config, log)
    trainer = start("trainer", config, log)
    try:
        # first life: let it train and checkpoint, then SIGTERM
        ckpts = run_dir / "checkpoints"
        wait_for(lambda: ckpts.is_dir() and len(list(ckpts.glob("checkpoint-*.pt"))) >= 2,
                 240, "two checkpoints", [sampler, trainer])
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        for name in (b"sagewalk_train_loss", b"sagewalk_trainer_busy_ratio",
                     b"sagewalk_curriculum_hard_negatives", b"sagewalk_learning_rate"):
            assert name in metrics, name
        trainer.send_signal(signal.SIGTERM)
        assert trainer.wait(60) == 0, log.read_text()[-3000:]
        first = json.loads((run_dir / "run_summary.json").read_text())
        assert first["stop_reason"] == "SIGTERM" and first["steps"] > 0
        # second life: resumes from the checkpoint and finishes the plan
        trainer = start("trainer", config, log)
        assert trainer.wait(420) == 0, log.read_text()[-3000:]
    finally:
        for p in (trainer, sampler):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        sampler_rc = sampler.wait(60)
    text = log.read_text()
    assert sampler_rc == 0, text[-3000:]
    assert "resumed from" in text
    summary = json.loads((run_dir / "run_summary.json").read_text())
    from graphstore import open_store
    from sagewalk.config import load
    from worker.assemble import BatchBuilder
    per_epoch = BatchBuilder(open_store(tmp_path / "store"), load(config).sampler).num_batches(0)
    assert summary["stop_reason"] == "completed"
    assert summary["steps"] == EPOCHS * per_epoch, summary
    assert summary["epochs_done"] == {str(e): per_epoch for e in range(EPOCHS)}
    assert summary["duplicates"] == 0 and summary["batches_accepted"] > 0
    assert summary["validation"], "no validation pass was logged"
    assert (run_dir / "model.pt").exists()
    precision = community_precision(run_dir, tmp_path / "store", communities)
    chance = 1.0 / COMMUNITIES
    print(f"community precision@10 {precision:.3f} (chance {chance:.3f}); summary {summary}")
    assert precision > 2 * chance, f"precision@10 {precision:.3f}, chance {chance:.3f}"
