"""Run the real pipeline (`sagewalk up`: sampler daemon + producers + trainer) on
a small synthetic store, with every metrics port chosen free, for the
monitoring end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from graphstore import build_from_arrays
from monitoring.discovery import read_sd_file
from procs import children, cmdline, descendants

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """\
[graphstore]
path = "{store}"
[sampler]
num_walks = 4
walk_length = 4
num_neighbors = 5
batch_size = 32
easy_negatives = 20
hard_negative_walks = 20
hard_negative_walk_length = 5
[worker]
producers = {producers}
trainer_endpoint = "ipc://{tmp}/trainer.sock"
control_endpoint = "ipc://{tmp}/control.sock"
[trainer]
hidden_dim = 32
embedding_dim = 16
epochs = 1000
run_dir = "{tmp}/run"
checkpoint_every_s = 2.0
validate_every = 10
validation_queries = 50
validation_candidates = 100
[monitoring]
trainer_port = {trainer_port}
sampler_port = {sampler_port}
producer_base_port = 0
sd_file = "{tmp}/producers.json"
"""


def build_store(path: Path) -> None:
    """400 items in 8 communities rated by 1000 users: enough for walks to mean something."""
    rng = np.random.default_rng(0)
    users = rng.integers(0, 1000, 8000)
    community = rng.integers(0, 8, 1000)
    items = (community[users] * 50 + rng.integers(0, 50, users.size)) % 400
    features = rng.standard_normal((400, 16)).astype(np.float32)
    build_from_arrays(path, edges={"rates": ("item", "user", items, users)},
                      features={"item": features})


class PipelineRun:
    def __init__(self, tmp: Path, *, trainer_port: int, sampler_port: int, producers: int = 2):
        self.tmp = tmp
        self.producers = producers
        self.trainer = f"127.0.0.1:{trainer_port}"
        self.sampler = f"127.0.0.1:{sampler_port}"
        self.sd_file = tmp / "producers.json"
        self.config = tmp / "sagewalk.toml"
        build_store(tmp / "store")
        self.config.write_text(CONFIG.format(store=tmp / "store", tmp=tmp, producers=producers,
                                             trainer_port=trainer_port, sampler_port=sampler_port))
        self.log = tmp / "up.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> "PipelineRun":
        self.proc = subprocess.Popen([sys.executable, "-m", "sagewalk", "up", "--config",
                                      str(self.config)], cwd=ROOT, stdout=self.log.open("w"),
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"sagewalk up exited {self.proc.returncode}:\n"
                                     f"{self.log.read_text()[-3000:]}")
            if self._ready(self.trainer) and len(self.producer_targets()) == self.producers:
                return self
            time.sleep(0.3)
        raise AssertionError(f"pipeline not ready in {timeout:.0f} s:\n"
                             f"{self.log.read_text()[-3000:]}")

    def producer_targets(self) -> list[str]:
        return [address for address, _ in read_sd_file(self.sd_file)]

    def producer_pids(self) -> list[int]:
        """Producer processes: the sampler daemon's children started by multiprocessing."""
        sampler = [p for p in children(self.proc.pid) if b"sampler" in cmdline(p)]
        return [p for p in children(sampler[0]) if b"spawn_main" in cmdline(p)
                and b"resource_tracker" not in cmdline(p)]

    @staticmethod
    def _ready(address: str) -> bool:
        try:
            with urllib.request.urlopen(f"http://{address}/readyz", timeout=1) as reply:
                return reply.status == 200
        except (OSError, urllib.error.HTTPError):
            return False

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        family = descendants(self.proc.pid)
        self.proc.send_signal(signal.SIGTERM)  # `up` forwards it: daemons drain and exit
        try:
            self.proc.wait(timeout=45)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pid in family:  # the daemons run in their own sessions: never leave one behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # exited cleanly, as it should
