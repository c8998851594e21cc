"""The supervisor with real producer processes (spawned) against a BatchStream here."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from synthetic import SyntheticBuilder

from gpu_consumer.stream import BatchStream, EpochPlan
from sagewalk.config import from_dict
from worker.control import ControlServer, request
from worker.supervisor import Supervisor


def make_config(tmp_path, producers=2, **worker):
    return from_dict({
        "worker": {"producers": producers, "trainer_endpoint": f"ipc://{tmp_path}/t.sock",
                   "control_endpoint": f"ipc://{tmp_path}/c.sock", "heartbeat_s": 0.1,
                   "liveness_s": 1.0, "credits": 2, **worker},
        "monitoring": {"producer_base_port": 0, "sd_file": "", "sampler_port": 0}})


class Running:
    """A supervisor loop on a thread (signals are the CLI's business)."""

    def __init__(self, config):
        self.sup = Supervisor(config, builder="synthetic:make_builder")
        self.control = ControlServer(config.worker.control_endpoint)
        self.status = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.status = self.sup.run(self.control)

    def wait_alive(self, n, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.sup.status()["pids"]
            if len(pids) == n:
                return pids
            time.sleep(0.05)
        raise AssertionError(f"wanted {n} producers, have {self.sup.status()}")

    def stop(self):
        self.sup.request_stop()
        self.thread.join(30)
        self.control.close()
        assert not self.thread.is_alive()
        return self.status


def exactly_once(stream, plan, during=None):
    keys = []
    for tbatch in stream:
        keys.append(tbatch.ticket.key)
        stream.done(tbatch.ticket)
        if during:
            during(len(keys))
    expected = [(e, b) for e in range(plan.epochs) for b in range(plan.num_batches(e))]
    assert sorted(keys) == expected
    return keys


def test_kill_9_producer_is_restarted_and_epoch_is_exact(tmp_path):
    config = make_config(tmp_path)
    plan = EpochPlan(1, num_batches=lambda e: 150, base_seed=1)
    with BatchStream(config.worker, digest=SyntheticBuilder.digest, plan=plan) as stream:
        running = Running(config)
        victim = running.wait_alive(2)[f"{running.sup.name_prefix}-0"]
        killed = []

        def chaos(n):  # once both producers have joined, so the victim holds tickets
            if not killed and n >= 20 and stream.summary()["producers_connected"] == 2:
                os.kill(victim, signal.SIGKILL)
                killed.append(n)
        exactly_once(stream, plan, chaos)
        assert killed
        assert running.sup.total_restarts == 1
        assert victim not in running.sup.status()["pids"].values()
        assert running.stop() == 0
        summary = stream.summary()
    assert summary["batches_accepted"] == 150
    assert summary["producer_restarts"] == 1


def test_sigstop_is_detected_reissued_and_rejoins_without_duplicates(tmp_path):
    from worker.config import WorkerConfig
    defaults = WorkerConfig()  # the shipped liveness settings must notice a hang within 3 s
    config = make_config(tmp_path, heartbeat_s=defaults.heartbeat_s,
                         liveness_s=defaults.liveness_s)
    plan = EpochPlan(1, num_batches=lambda e: 300, base_seed=2)
    with BatchStream(config.worker, digest=SyntheticBuilder.digest, plan=plan) as stream:
        running = Running(config)
        victim = running.wait_alive(2)[f"{running.sup.name_prefix}-1"]
        stopped = {}

        def chaos(n):
            if "at" not in stopped and n >= 10 and stream.summary()["producers_connected"] == 2:
                os.kill(victim, signal.SIGSTOP)
                stopped["at"] = time.monotonic()
            if "at" in stopped and "gap_at" not in stopped and stream.summary()["gaps"]:
                stopped["gap_at"] = time.monotonic()
            if n == 250:
                os.kill(victim, signal.SIGCONT)
        try:
            exactly_once(stream, plan, chaos)
        finally:
            os.kill(victim, signal.SIGCONT)
        deadline = time.monotonic() + 5
        while stream.summary()["producers_connected"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stream.summary()["producers_connected"] == 2  # the stopped one rejoined
        assert running.stop() == 0
        summary = stream.summary()
    assert summary["gaps"] >= 1
    assert stopped["gap_at"] - stopped["at"] < 3.0
    assert summary["batches_accepted"] == 300


def test_scale_live_over_the_control_socket(tmp_path):
    config = make_config(tmp_path, producers=1)
    running = Running(config)
    try:
        running.wait_alive(1)
        reply = request(config.worker.control_endpoint, {"cmd": "scale", "producers": 3})
        assert reply["producers"] == 3
        running.wait_alive(3)
        request(config.worker.control_endpoint, {"cmd": "scale", "producers": 1})
        running.wait_alive(1)
        assert running.sup.total_restarts == 0  # retired producers are not crashes
        with pytest.raises(Exception, match="integer >= 0"):
            request(config.worker.control_endpoint, {"cmd": "scale", "producers": -1})
    finally:
        assert running.stop() == 0


def test_restart_budget_stops_a_crash_loop(tmp_path):
    config = make_config(tmp_path, producers=1, restart_budget=2)
    sup = Supervisor(config, builder="synthetic:no_such_factory")
    started = time.monotonic()
    assert sup.run() == 1
    assert sup.total_restarts == 3 and time.monotonic() - started < 20


def test_producers_serve_metrics_and_are_listed_for_prometheus(tmp_path):
    import json
    import urllib.request

    from sagewalk.config import override
    config = make_config(tmp_path, producers=2)
    config = override(config, f'monitoring.sd_file="{tmp_path}/producers.json"')
    running = Running(config)
    sd = tmp_path / "producers.json"

    def targets():
        try:
            groups = json.loads(sd.read_text())
        except (OSError, ValueError):
            return []
        return [t for g in groups for t in g["targets"]]
    try:
        deadline = time.monotonic() + 20
        while len(targets()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(targets()) == 2
        # no target labels: a `role` one would clash with sagewalk_build_info's
        assert all(g["labels"] == {} for g in json.loads(sd.read_text()))
        for target in targets():
            body = urllib.request.urlopen(f"http://{target}/metrics", timeout=5).read()
            assert b"sagewalk_build_info" in body
        request(config.worker.control_endpoint, {"cmd": "scale", "producers": 1})
        running.wait_alive(1)
        deadline = time.monotonic() + 10
        while len(targets()) != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(targets()) == 1
    finally:
        assert running.stop() == 0
    assert targets() == []


def _rss_bytes(pid: int) -> int:
    from common.procstat import rss_bytes
    return rss_bytes(pid)


def test_a_stalled_trainer_keeps_producer_memory_bounded(tmp_path):
    config = make_config(tmp_path, producers=1, credits=4)
    plan = EpochPlan(1, num_batches=lambda e: 10_000)
    with BatchStream(config.worker, digest=SyntheticBuilder.digest, plan=plan,
                     prefetch=2) as stream:
        sup = Supervisor(config, builder="synthetic:make_big_builder")
        thread = threading.Thread(target=sup.run, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 20
            while stream.summary()["batches_accepted"] < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            pid = next(iter(sup.status()["pids"].values()))
            time.sleep(1.0)  # nobody trains: the first credits' worth is all that moves
            before, issued = _rss_bytes(pid), stream.summary()["tickets_issued"]
            time.sleep(2.0)
            after = _rss_bytes(pid)
            summary = stream.summary()
        finally:
            sup.request_stop()
            thread.join(30)
    assert issued == summary["tickets_issued"] <= 2 + 4  # prefetch + credits, then nothing
    assert summary["batches_accepted"] <= 2 + 4
    assert after - before < 4 << 20, f"producer grew {after - before} bytes while stalled"
