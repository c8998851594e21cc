"""Fault tests on the real daemons: `sagewalk sampler` (producer processes with
the real BatchBuilder on a real store) and `sagewalk trainer`, over ipc://.

Every accepted batch is audited (worker.audit_log: one line per accepted
ticket), so "each ticket exactly once" is checked ticket by ticket.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from procs import alive, children, cmdline, descendants

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """\
[graphstore]
path = "{tmp}/store"
[sampler]
num_walks = 4
walk_length = 4
num_neighbors = 5
batch_size = 32
easy_negatives = 16
hard_negative_walks = 20
hard_negative_walk_length = 5
[worker]
producers = {producers}
trainer_endpoint = "ipc://{tmp}/trainer.sock"
control_endpoint = "ipc://{tmp}/control.sock"
heartbeat_s = 0.2
liveness_s = 1.5
audit_log = "{tmp}/audit.log"
[trainer]
hidden_dim = 16
embedding_dim = 8
epochs = {epochs}
run_dir = "{tmp}/run"
checkpoint_every_s = 0.5
validate_every = 0
[monitoring]
trainer_port = 0
sampler_port = 0
producer_base_port = 0
"""


class Daemons:
    def __init__(self, tmp: Path, *, producers: int = 2, epochs: int = 12):
        self.tmp = tmp
        rng = np.random.default_rng(0)
        users = rng.integers(0, 600, 4000)
        community = rng.integers(0, 6, 600)
        items = (community[users] * 50 + rng.integers(0, 50, users.size)) % 300
        from graphstore import build_from_arrays
        build_from_arrays(tmp / "store", edges={"rates": ("item", "user", items, users)},
                          features={"item": rng.standard_normal((300, 8)).astype(np.float32)})
        self.config = tmp / "sagewalk.toml"
        self.write_config(producers=producers, epochs=epochs)
        self.epochs = epochs
        self.log = tmp / "daemons.log"
        self.procs: list[subprocess.Popen] = []

    def write_config(self, **values) -> None:
        self.config.write_text(CONFIG.format(tmp=self.tmp, **values))

    def start(self, verb: str, *extra: str) -> subprocess.Popen:
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
        proc = subprocess.Popen([sys.executable, "-m", "sagewalk", "-v", verb, "--config",
                                 str(self.config), *extra], cwd=ROOT, env=env,
                                stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def audit(self) -> list[tuple[int, int]]:
        path = self.tmp / "audit.log"
        if not path.exists():
            return []
        lines = path.read_text().splitlines()
        return [(int(e), int(b)) for e, b, _ in (line.split() for line in lines if line)]

    def plan(self) -> list[tuple[int, int]]:
        from graphstore import open_store
        from sagewalk.config import load
        from worker.assemble import BatchBuilder
        n = BatchBuilder(open_store(self.tmp / "store"), load(self.config).sampler).num_batches(0)
        return [(e, b) for e in range(self.epochs) for b in range(n)]

    def summary(self) -> dict:
        return json.loads((self.tmp / "run" / "run_summary.json").read_text())

    def text(self) -> str:
        return self.log.read_text()

    def wait_for(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}:\n"
                             f"{self.text()[-3000:]}")

    def cleanup(self) -> None:
        for proc in self.procs:
            for pid in descendants(proc.pid):
                _kill(pid, signal.SIGCONT)
                _kill(pid, signal.SIGKILL)
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def producers_of(sampler: subprocess.Popen) -> list[int]:
    return [p for p in children(sampler.pid) if b"spawn_main" in cmdline(p)
            and b"resource_tracker" not in cmdline(p)]


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


@pytest.fixture
def daemons(tmp_path):
    d = Daemons(tmp_path)
    yield d
    d.cleanup()


@pytest.mark.slow
def test_producer_kill9_and_sigstop_epochs_stay_exact(daemons):
    # A longer plan than the default: the SIGCONT'd producer must find the
    # trainer still running to join it again (with 12 epochs the run could end
    # within the producer's first heartbeat after SIGCONT).
    daemons.write_config(producers=2, epochs=40)
    daemons.epochs = 40
    trainer = daemons.start("trainer")
    sampler = daemons.start("sampler")
    daemons.wait_for(lambda: len(daemons.audit()) >= 20 and "joined (2 connected)" in
                     daemons.text(), 60, "both producers joined and 20 accepted batches")
    first, second = sorted(producers_of(sampler))
    os.kill(first, signal.SIGKILL)
    daemons.wait_for(lambda: len(producers_of(sampler)) == 2 and first not in
                     producers_of(sampler), 20, "the killed producer to be restarted")
    seen = len(daemons.audit())
    os.kill(second, signal.SIGSTOP)
    stopped = time.monotonic()
    daemons.wait_for(lambda: "declared dead" in daemons.text(), 5, "the stopped producer "
                     "to be declared dead")
    detected = time.monotonic() - stopped
    daemons.wait_for(lambda: len(daemons.audit()) >= seen + 20, 30,
                     "progress without the stopped producer")
    os.kill(second, signal.SIGCONT)
    # after SIGCONT the stopped producer joins again rather than staying out
    daemons.wait_for(lambda: daemons.text().count("joined the trainer") >= 4, 10,
                     "the resumed producer to join the trainer again")
    assert trainer.wait(90) == 0, daemons.text()[-3000:]
    keys = daemons.audit()
    assert Counter(keys).most_common(1)[0][1] == 1, "a ticket was accepted twice"
    assert sorted(keys) == daemons.plan()
    summary = daemons.summary()
    assert summary["duplicates"] == 0 and summary["stop_reason"] == "completed"
    assert summary["gaps"] >= 1 and summary["producer_restarts"] >= 1, summary
    assert detected < 3.0, f"hung producer noticed after {detected:.1f} s"
    assert daemons.text().count("joined the trainer") >= 4
    family = descendants(sampler.pid)
    sampler.send_signal(signal.SIGTERM)
    assert sampler.wait(30) == 0, daemons.text()[-3000:]
    daemons.wait_for(lambda: not [p for p in family if alive(p)], 5,
                     "every producer (and multiprocessing's resource tracker) to exit")


@pytest.mark.slow
def test_trainer_kill9_resumes_and_covers_the_same_tickets(daemons):
    trainer = daemons.start("trainer")
    sampler = daemons.start("sampler")
    checkpoints = daemons.tmp / "run" / "checkpoints"
    daemons.wait_for(lambda: len(daemons.audit()) >= 60 and checkpoints.is_dir()
                     and any(checkpoints.glob("checkpoint-*.pt")), 60, "a checkpoint")
    before = producers_of(sampler)
    trainer.kill()
    trainer.wait()
    time.sleep(2.0)  # producers notice the silence and start re-joining
    trainer = daemons.start("trainer")
    assert trainer.wait(90) == 0, daemons.text()[-3000:]
    keys = daemons.audit()
    assert set(keys) == set(daemons.plan())  # the uninterrupted run's set: the whole plan
    assert "resumed from" in daemons.text()
    assert producers_of(sampler) == before, "producers restarted instead of reconnecting"
    summary = daemons.summary()
    assert summary["stop_reason"] == "completed" and summary["duplicates"] == 0
    sampler.send_signal(signal.SIGTERM)
    assert sampler.wait(30) == 0


def test_scale_live_with_the_cli_and_sighup(daemons):
    sampler = daemons.start("sampler")
    daemons.wait_for(lambda: len(producers_of(sampler)) == 2, 20, "2 producers")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-m", "sagewalk", "scale", "--producers", "3",
                          "--config", str(daemons.config)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "3 wanted" in out.stdout
    daemons.wait_for(lambda: len(producers_of(sampler)) == 3, 20, "3 producers")
    daemons.write_config(producers=1, epochs=daemons.epochs)
    sampler.send_signal(signal.SIGHUP)
    daemons.wait_for(lambda: len(producers_of(sampler)) == 1, 20, "1 producer after SIGHUP")
    bad = subprocess.run([sys.executable, "-m", "sagewalk", "scale", "--producers", "2",
                          "--endpoint", f"ipc://{daemons.tmp}/nobody.sock"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "no sampler daemon answered" in bad.stderr
    sampler.send_signal(signal.SIGTERM)
    assert sampler.wait(30) == 0
    assert "restarting" not in daemons.text()  # retired producers are not crashes


@pytest.mark.slow  # ~9 s alone, far more when the machine is loaded (trainer start-up)
def test_up_sigterm_drains_checkpoints_and_leaves_nothing(daemons):
    daemons.write_config(producers=2, epochs=1000)
    up = daemons.start("up")
    daemons.wait_for(lambda: len(daemons.audit()) >= 30, 60, "30 accepted batches")
    family = descendants(up.pid)
    assert len(family) >= 4  # trainer, sampler, 2 producers
    up.send_signal(signal.SIGTERM)
    assert up.wait(60) == 0, daemons.text()[-3000:]
    assert daemons.summary()["stop_reason"] == "SIGTERM"
    assert any((daemons.tmp / "run" / "checkpoints").glob("checkpoint-*.pt"))
    daemons.wait_for(lambda: not [p for p in family if alive(p)], 5,
                     "every process of the run to exit")
    assert "drained:" in daemons.text()


@pytest.mark.slow
def test_remote_producers_join_over_tcp_with_curve_keys(daemons):
    import socket

    from gpu_consumer.stream import BatchStream, EpochPlan
    from graphstore import open_store
    from sagewalk.config import load, override
    from worker.assemble import BatchBuilder

    keys = daemons.tmp / "keys"
    out = subprocess.run([sys.executable, "-m", "sagewalk", "keys", "generate", str(keys)],
                         cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and (keys / "authorized" / "producer.key").exists(), out.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"tcp://127.0.0.1:{port}"
    config = override(override(load(daemons.config), f'worker.trainer_endpoint="{endpoint}"'),
                      f'worker.curve_keys_dir="{keys}"')
    builder = BatchBuilder(open_store(daemons.tmp / "store"), config.sampler)
    plan = EpochPlan(1, num_batches=builder.num_batches)
    with BatchStream(config.worker, digest=builder.digest, plan=plan) as stream:
        sampler = daemons.start("sampler", "--connect", endpoint,
                                "--set", f'worker.curve_keys_dir="{keys}"')
        keys_seen = []
        for tbatch in stream:
            keys_seen.append(tbatch.ticket.key)
            stream.done(tbatch.ticket)
    assert sorted(keys_seen) == [(0, b) for b in range(builder.num_batches(0))]
    sampler.send_signal(signal.SIGTERM)
    assert sampler.wait(30) == 0, daemons.text()[-3000:]


def test_up_exits_with_the_trainers_error_and_stops_the_sampler(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(f'[graphstore]\npath = "{tmp_path}/missing"\n[worker]\n'
                      f'trainer_endpoint = "ipc://{tmp_path}/t.sock"\n'
                      f'control_endpoint = "ipc://{tmp_path}/c.sock"\n'
                      '[monitoring]\ntrainer_port = 0\nsampler_port = 0\n')
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    up = subprocess.Popen([sys.executable, "-m", "sagewalk", "up", "--config", str(config)],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = up.communicate(timeout=60)
    assert up.returncode == 2, out.decode()[-2000:]
    assert b"no such store directory" in out
    assert not descendants(up.pid)
