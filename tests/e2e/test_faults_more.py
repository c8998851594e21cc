"""More fault tests on the real daemons (issue 13): a trainer that is not up
yet, a producer identity reused while its old connection is still open, CPU
starvation, and a training step that raises.

Same harness as test_faults.py (`Daemons`: real `sagewalk sampler` and
`sagewalk trainer` processes over ipc://, every accepted ticket audited).
Each test waits on log lines, files and process states with bounded
deadlines, and kills only processes it started.  They start the trainer
(torch, numba) and run whole epochs, which takes longer than a default-suite
test may on a loaded 2-core machine: all are marked slow.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from common.procstat import rss_bytes
from test_faults import ROOT, Daemons, _kill, producers_of


def rss_kib(pid: int) -> int:
    return rss_bytes(pid) // 1024


def assert_exact(daemons: Daemons, keys=None) -> None:
    keys = daemons.audit() if keys is None else keys
    twice = [k for k, n in Counter(keys).items() if n > 1]
    assert not twice, f"tickets accepted twice: {twice[:10]}"
    assert sorted(keys) == daemons.plan(), "accepted tickets differ from the plan"


@pytest.fixture
def daemons(tmp_path):
    d = Daemons(tmp_path, epochs=4)
    yield d
    d.cleanup()


@pytest.mark.slow
def test_producers_started_before_the_trainer_back_off_and_join(daemons):
    sampler = daemons.start("sampler")
    # heartbeat_s 0.2, liveness_s 1.5: hellos every 0.4, 0.8, then 1.5 s at most
    daemons.wait_for(lambda: daemons.text().count("next hello in 1.5 s") >= 2, 60,
                     "both producers to back off to one hello per liveness_s")
    pids = producers_of(sampler)
    assert len(pids) == 2
    before = {p: rss_kib(p) for p in pids}
    lines = daemons.text().count("next hello in")
    time.sleep(3.0)  # a measured interval with no trainer: nothing may grow or be logged
    grown = {p: rss_kib(p) - before[p] for p in pids}
    assert all(g < 2048 for g in grown.values()), f"producer RSS grew (KiB): {grown}"
    assert daemons.text().count("next hello in") == lines, "backoff kept logging at its cap"
    assert "joined the trainer" not in daemons.text()
    trainer = daemons.start("trainer")
    assert trainer.wait(180) == 0, daemons.text()[-3000:]
    assert "joined (2 connected)" in daemons.text()
    assert_exact(daemons)
    assert daemons.summary()["duplicates"] == 0
    assert producers_of(sampler) == pids, "a waiting producer was restarted"
    sampler.send_signal(signal.SIGTERM)
    assert sampler.wait(30) == 0, daemons.text()[-3000:]


@pytest.mark.slow
def test_identity_reused_while_the_old_connection_is_open(daemons):
    """Producer <host>-0 hangs (SIGSTOP: its connection stays open, as a dead
    host's TCP link does until it times out) and a second sampler daemon
    starts a producer with the same identity before the trainer's liveness
    check fires.  The trainer hands the route over, takes the old holder's
    tickets back, and the run completes with every ticket exactly once."""
    daemons.write_config(producers=2, epochs=8)
    daemons.epochs = 8
    # a liveness window the replacement surely beats even on a loaded machine
    daemons.config.write_text(daemons.config.read_text().replace("liveness_s = 1.5",
                                                                 "liveness_s = 30.0"))
    trainer = daemons.start("trainer")
    first = daemons.start("sampler")
    daemons.wait_for(lambda: "joined (2 connected)" in daemons.text()
                     and len(daemons.audit()) >= 10, 120, "2 producers and 10 batches")
    name = f"{socket.gethostname()}-0"
    old = int(re.search(rf"started producer {re.escape(name)} \(pid (\d+)\)",
                        daemons.text()).group(1))
    assert old in producers_of(first)
    os.kill(old, signal.SIGSTOP)
    hung_at = time.monotonic()
    second = daemons.start("sampler", "--set", "worker.producers=1", "--set",
                           f'worker.control_endpoint="ipc://{daemons.tmp}/control2.sock"')
    daemons.wait_for(lambda: f"producer {name} reconnected" in daemons.text(), 60,
                     "the trainer to hand the identity to the new producer")
    assert time.monotonic() - hung_at < 30.0, "the old connection timed out first"
    assert "declared dead" not in daemons.text()
    # the hung process never comes back (its host is gone): its connection closes now
    _kill(old, signal.SIGKILL)
    first.send_signal(signal.SIGTERM)  # <host>-1 drains; the supervisor sees -0 killed
    assert trainer.wait(180) == 0, daemons.text()[-3000:]
    assert_exact(daemons)
    summary = daemons.summary()
    assert summary["duplicates"] == 0 and summary["stop_reason"] == "completed", summary
    assert summary["producer_restarts"] >= 1  # a new incarnation under the old name
    second.send_signal(signal.SIGTERM)
    assert second.wait(30) == 0, daemons.text()[-3000:]
    assert first.wait(60) is not None


def busy_loop() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


@pytest.mark.slow
def test_cpu_starvation_declares_no_healthy_producer_dead(daemons):
    # The shipped heartbeat settings (0.5 s / 2.5 s), with every core of the
    # machine saturated by a busy loop this test starts.
    daemons.config.write_text(daemons.config.read_text().replace(
        "heartbeat_s = 0.2\nliveness_s = 1.5", "heartbeat_s = 0.5\nliveness_s = 2.5"))
    hogs = [busy_loop() for _ in range(os.cpu_count() or 2)]
    try:
        trainer = daemons.start("trainer")
        sampler = daemons.start("sampler")
        assert trainer.wait(300) == 0, daemons.text()[-3000:]
        assert all(h.poll() is None for h in hogs), "a busy loop ended early"
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    # up to the trainer's last line: after it exits the producers rightly notice
    text = daemons.text().partition("trainer done")[0]
    assert "declared dead" not in text, text[-3000:]
    assert "joining again" not in text, "a producer thought the trainer was lost"
    assert_exact(daemons)
    summary = daemons.summary()
    assert summary["gaps"] == 0 and summary["duplicates"] == 0, summary
    sampler.send_signal(signal.SIGTERM)
    assert sampler.wait(60) == 0, daemons.text()[-3000:]


@pytest.mark.slow
def test_a_failing_step_names_its_ticket_exits_nonzero_and_a_restart_resumes(daemons):
    daemons.write_config(producers=2, epochs=6)
    daemons.epochs = 6
    bad = "3:1"  # epoch 3: after the first checkpoints (checkpoint_every_s 0.5)
    env = {"SAGEWALK_TEST_BAD_BATCH": bad}
    trainer = start_with_env(daemons, "trainer", env)
    sampler = daemons.start("sampler")
    code = trainer.wait(180)
    text = daemons.text()
    assert code == 2, f"trainer exited {code}:\n{text[-3000:]}"
    assert "failed on ticket epoch 3 batch 1" in text  # logged, with the traceback
    assert "error: training step" in text and "epoch 3 batch 1" in text.split("error:")[-1]
    assert "restart the trainer to resume" in text
    assert any((daemons.tmp / "run" / "checkpoints").glob("checkpoint-*.pt"))
    # Every producer that had joined notices; one still starting when the step
    # failed (the failing batch can come before it joins) keeps saying hello.
    joins = text.count("joined the trainer")
    assert joins >= 1
    daemons.wait_for(lambda: daemons.text().count("no word from the trainer") >= joins, 30,
                     "every joined producer to notice the trainer is gone")
    pids = producers_of(sampler)
    trainer = daemons.start("trainer")
    assert trainer.wait(180) == 0, daemons.text()[-3000:]
    text = daemons.text()
    assert "resumed from" in text
    assert text.count("joined the trainer") >= joins + 2, "producers did not reconnect"
    assert producers_of(sampler) == pids, "producers restarted instead of reconnecting"
    # batches accepted but not trained when the step failed are accepted again
    assert set(daemons.audit()) == set(daemons.plan())
    summary = daemons.summary()
    assert summary["stop_reason"] == "completed" and summary["duplicates"] == 0
    sampler.send_signal(signal.SIGTERM)
    assert sampler.wait(30) == 0, daemons.text()[-3000:]


def start_with_env(daemons: Daemons, verb: str, extra_env: dict) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **extra_env)
    proc = subprocess.Popen([sys.executable, "-m", "sagewalk", "-v", verb, "--config",
                             str(daemons.config)], cwd=ROOT, env=env,
                            stdout=daemons.log.open("ab"), stderr=subprocess.STDOUT)
    daemons.procs.append(proc)
    return proc


@pytest.mark.slow
def test_kill9_inside_checkpoint_writes_newest_intact_and_the_run_resumes(daemons):
    """Ten times: kill -9 the trainer while it writes a checkpoint, at a
    seeded random point of the write (a fraction of the file's bytes on disk,
    up to the fsync before the rename); each time the newest checkpoint file
    is intact, the next trainer resumes from it, and at the end the run has
    covered the plan with no duplicate."""
    import numpy as np

    from gpu_consumer.checkpoint import checkpoint_dir, decode, list_checkpoints

    daemons.write_config(producers=2, epochs=300)
    daemons.epochs = 300
    # 400k hashed-id rows x 16: a ~80 MB checkpoint whose write and fsync take
    # far longer than this test's 2 ms polling, so the kill lands inside it.
    daemons.config.write_text(daemons.config.read_text().replace(
        "hidden_dim = 16", "hidden_dim = 16\nid_embedding_buckets = 400000"))
    folder = checkpoint_dir(daemons.tmp / "run")
    rng = np.random.default_rng(13)
    sampler = daemons.start("sampler")
    steps, leftovers = [], []
    for round_ in range(10):
        trainer = daemons.start("trainer")
        # a checkpoint past the one resumed from, so every round makes progress
        daemons.wait_for(lambda: newest_step(daemons) > (steps[-1] if steps else 0), 180,
                         "a checkpoint newer than the last round's")
        assert not [t for t in leftovers if t.exists()], "a dead writer's temp file stayed"
        expected = list_checkpoints(daemons.tmp / "run")[-1].stat().st_size
        fraction = float(rng.uniform(0.0, 1.0))
        tmp = wait_for_write(folder, fraction * expected, trainer, daemons, timeout=120)
        trainer.kill()
        trainer.wait()
        assert tmp.exists(), f"round {round_}: the write finished before the kill"
        newest = list_checkpoints(daemons.tmp / "run")[-1]
        state = decode(newest.read_bytes(), str(newest))  # intact: raises otherwise
        steps.append(int(state["step"]))
        leftovers.append(tmp)  # the killed writer's: the next trainer's save removes it
    assert steps == sorted(steps) and steps[-1] > steps[0], steps
    assert daemons.text().count("resumed from") >= 9
    daemons.config.write_text(daemons.config.read_text().replace(
        "epochs = 300", f"epochs = {max(e for e, _ in daemons.audit()) + 2}"))
    daemons.epochs = max(e for e, _ in daemons.audit()) + 2
    trainer = daemons.start("trainer")
    assert trainer.wait(300) == 0, daemons.text()[-3000:]
    assert set(daemons.audit()) == set(daemons.plan())
    assert not list(folder.glob(".checkpoint-*.tmp-*")), "temp files left behind"
    summary = daemons.summary()
    assert summary["stop_reason"] == "completed" and summary["duplicates"] == 0
    sampler.send_signal(signal.SIGTERM)
    assert sampler.wait(30) == 0, daemons.text()[-3000:]


def newest_step(daemons: Daemons) -> int:
    from gpu_consumer.checkpoint import list_checkpoints
    found = list_checkpoints(daemons.tmp / "run")
    return int(found[-1].stem.split("-")[1]) if found else 0


def wait_for_write(folder: Path, nbytes: float, trainer, daemons, *, timeout: float) -> Path:
    """The temp file of a checkpoint being written, once it holds `nbytes`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert trainer.poll() is None, daemons.text()[-3000:]
        for tmp in folder.glob(".checkpoint-*.tmp-*"):
            try:
                if tmp.stat().st_size >= nbytes:
                    return tmp
            except FileNotFoundError:
                pass  # renamed into place between glob and stat: the next one
        time.sleep(0.002)
    raise AssertionError(f"no checkpoint write reached {nbytes:.0f} bytes in {timeout} s")
