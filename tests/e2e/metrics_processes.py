"""A process that serves /metrics and reports a role's metrics through the hook.

Used by the monitoring integration tests to run real exporter processes with
moving numbers independent of the training pipeline (the pipeline tests run
`sagewalk up` itself).  Numbers come from a deterministic simulated workload:
producers build batches at a steady rate, the trainer accepts them, its loss
decays.

    python tests/e2e/metrics_processes.py --role producer --instance 0 --port-file p0
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from monitoring import hook
from monitoring.exporter import serve_metrics

TICK_S = 0.05


def producer(instance: str, step: int) -> None:
    hook.observe("sagewalk_sampling_seconds", 0.01 + 0.005 * (step % 4), producer=instance)
    hook.inc("sagewalk_producer_batches_total", producer=instance)
    hook.inc("sagewalk_producer_examples_total", 64, producer=instance)
    hook.inc("sagewalk_wire_bytes_total", 250_000, direction="sent")


def trainer(instance: str, step: int, producers: int) -> None:
    for p in range(producers):
        hook.set("sagewalk_batches_in_flight", (step + p) % 4, producer=str(p))
        hook.set("sagewalk_producer_last_heartbeat_timestamp_seconds", time.time(),
                 producer=str(p))
    hook.inc("sagewalk_tickets_issued_total", producers)
    hook.inc("sagewalk_batches_accepted_total", producers)
    hook.inc("sagewalk_train_examples_total", 64 * producers)
    hook.inc("sagewalk_wire_bytes_total", 250_000 * producers, direction="received")
    hook.observe("sagewalk_train_step_seconds", 0.02)
    hook.inc("sagewalk_trainer_data_wait_seconds_total", TICK_S * 0.2)
    hook.set("sagewalk_prefetch_queue_batches", step % 8)
    hook.set("sagewalk_producers_alive", producers)
    hook.set("sagewalk_trainer_busy_ratio", 0.75 + 0.2 * math.sin(step / 20))
    hook.set("sagewalk_train_loss", 0.1 + 0.9 * math.exp(-step / 100))
    hook.set("sagewalk_learning_rate", 1e-3)
    hook.set("sagewalk_epoch", 1 + step // 200)
    hook.set("sagewalk_epoch_progress_ratio", (step % 200) / 200)
    hook.set("sagewalk_curriculum_hard_negatives", step // 200)
    if step % 20 == 0:
        hook.set("sagewalk_validation_hit_rate", min(1.0, 0.2 + step / 400), k="10")
        hook.set("sagewalk_last_checkpoint_timestamp_seconds", time.time())
    if step % 10 == 0:
        hook.inc("sagewalk_rejected_messages_total", reason="digest")


def sampler(instance: str, step: int, producers: int) -> None:
    hook.set("sagewalk_producers_alive", producers)
    if step == 0:
        hook.inc("sagewalk_producer_restarts_total", 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", required=True, choices=["producer", "trainer", "sampler"])
    parser.add_argument("--instance", default="0")
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args()
    server = serve_metrics("127.0.0.1", 0, role=args.role, instance=args.instance)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    Path(args.port_file + ".tmp").write_text(str(server.port))
    Path(args.port_file + ".tmp").rename(args.port_file)  # readers never see a partial port
    server.set_ready(True)
    step = 0
    while not stop.wait(TICK_S):
        if args.role == "producer":
            producer(args.instance, step)
        elif args.role == "trainer":
            trainer(args.instance, step, args.producers)
        else:
            sampler(args.instance, step, args.producers)
        step += 1
    server.set_ready(False)  # draining: /readyz says so while the last scrape happens
    time.sleep(0.3)
    server.close()


class Simulation:
    """Starts and stops metrics processes: a trainer, a sampler and producers."""

    def __init__(self, workdir: Path, producers: int = 2) -> None:
        self.workdir = workdir
        self.producers = producers
        self.procs: dict[str, tuple[subprocess.Popen, int]] = {}

    def start(self, role: str, instance: str = "0") -> int:
        port_file = self.workdir / f"{role}-{instance}.port"
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
        proc = subprocess.Popen(
            [sys.executable, __file__, "--role", role, "--instance", instance,
             "--producers", str(self.producers), "--port-file", str(port_file)], env=env)
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"{role} {instance} did not start (exit {proc.poll()})")
            time.sleep(0.05)
        port = int(port_file.read_text())
        self.procs[f"{role}-{instance}"] = (proc, port)
        return port

    def start_all(self) -> dict[str, int]:
        ports = {"trainer": self.start("trainer"), "sampler": self.start("sampler")}
        for i in range(self.producers):
            ports[f"producer-{i}"] = self.start("producer", str(i))
        return ports

    def kill(self, name: str) -> None:
        proc, _ = self.procs[name]
        proc.kill()
        proc.wait(timeout=10)

    def stop(self) -> None:
        for proc, _ in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc, _ in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
