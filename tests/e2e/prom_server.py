"""Start a real Prometheus server (Debian's `prometheus`) on the shipped config.

The test config is `deploy/prometheus.yml` with only addresses, the file-SD
path and intervals rewritten, so the tests prove the file users get.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    def __init__(self, workdir: Path, *, trainer: str, sampler: str, sd_file: Path,
                 scrape: str = "500ms") -> None:
        self.binary = shutil.which("prometheus")
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = (DEPLOY / "prometheus.yml").read_text()
        for old, new in (('"127.0.0.1:9750"', f'"{trainer}"'), ('"127.0.0.1:9740"', f'"{sampler}"'),
                         ('"producers.json"', f'"{sd_file}"'),
                         ("scrape_interval: 5s", f"scrape_interval: {scrape}"),
                         ("scrape_timeout: 4s", f"scrape_timeout: {scrape}"),
                         ("evaluation_interval: 5s", f"evaluation_interval: {scrape}"),
                         ("refresh_interval: 5s", "refresh_interval: 1s")):
            assert old in config, f"deploy/prometheus.yml no longer contains {old}"
            config = config.replace(old, new)
        (workdir / "prometheus.yml").write_text(config)
        shutil.copy(DEPLOY / "alerts.yml", workdir / "alerts.yml")
        self.proc: subprocess.Popen | None = None
        self.log = workdir / "prometheus.log"

    def start(self, timeout: float = 30.0) -> "Prometheus":
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={self.workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=self.log.open("w"))
        self.wait_for(lambda: self._ready(), timeout, "Prometheus did not become ready")
        return self

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as reply:
                return reply.status == 200
        except OSError:
            return False

    def api(self, path: str, **params) -> dict:
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as reply:
            body = json.load(reply)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[tuple[dict, float]]:
        return [(r["metric"], float(r["value"][1]))
                for r in self.api("query", query=promql)["result"]]

    def wait_for(self, condition, timeout: float, message: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"Prometheus exited {self.proc.returncode}: "
                                     f"{self.log.read_text()[-2000:]}")
            result = condition()
            if result:
                return result
            time.sleep(0.2)
        raise AssertionError(f"{message} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
