"""Read the current samples of every sagewalk process, from the daemons or Prometheus.

Both sources return the same `Snapshot`: the raw samples of each process plus
which targets answered, so `monitoring.picture` computes rates and the
dashboard's panels one way, whichever source fed them.

    source = DaemonSource(lambda: targets_from_config(config.monitoring, config.worker))
    source = PrometheusSource("http://127.0.0.1:9090")
    snapshot = source.snapshot()
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence

from prometheus_client.parser import text_string_to_metric_families

from common.errors import SagewalkError
from monitoring.discovery import DiscoveryError, read_sd_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """A process endpoint: `address` is host:port, `role` trainer/sampler/producer."""

    address: str
    role: str


@dataclass(frozen=True)
class TargetState:
    address: str
    role: str
    up: bool
    error: str = ""


@dataclass(frozen=True)
class Sample:
    """One series value; `instance` is the address of the process that served it."""

    instance: str
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float

    @property
    def key(self) -> tuple:
        return (self.instance, self.name, self.labels)

    def label(self, name: str) -> str:
        return dict(self.labels).get(name, "")


@dataclass(frozen=True)
class Snapshot:
    time: float
    targets: tuple[TargetState, ...]
    samples: tuple[Sample, ...]

    def roles(self) -> dict[str, str]:
        """instance -> role, from each process's build info, else its target."""
        roles = {t.address: t.role for t in self.targets}
        for s in self.samples:
            if s.name == "sagewalk_build_info" and s.label("role"):
                roles[s.instance] = s.label("role")
        return roles


def parse_metrics(instance: str, text: str) -> list[Sample]:
    """Samples of the Prometheus text format `text` (only sagewalk_ series)."""
    samples = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("sagewalk_"):
                samples.append(Sample(instance, s.name, tuple(sorted(s.labels.items())),
                                      float(s.value)))
    return samples


class DaemonSource:
    """Scrapes each target's /metrics directly, in parallel."""

    def __init__(self, targets: Callable[[], Sequence[Target]], timeout: float = 2.0) -> None:
        self._targets = targets
        self._timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="scrape")

    def describe(self) -> str:
        return "daemons: " + ", ".join(f"{t.role}@{t.address}" for t in self._targets())

    def snapshot(self) -> Snapshot:
        targets = list(self._targets())
        results = list(self._pool.map(self._scrape, targets))
        states = tuple(state for state, _ in results)
        samples = tuple(s for _, found in results for s in found)
        return Snapshot(time.time(), states, samples)

    def _scrape(self, target: Target) -> tuple[TargetState, list[Sample]]:
        url = f"http://{target.address}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=self._timeout) as reply:
                text = reply.read().decode("utf-8")
            return TargetState(target.address, target.role, True), parse_metrics(target.address, text)
        except (OSError, ValueError) as err:  # refused, timed out, garbled exposition
            return TargetState(target.address, target.role, False, _reason(err)), []

    def close(self) -> None:
        self._pool.shutdown(wait=False)


class PrometheusSource:
    """Reads the latest sagewalk samples and `up` of sagewalk jobs from a Prometheus server."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self._timeout = timeout

    def describe(self) -> str:
        return f"prometheus: {self.url}"

    def snapshot(self) -> Snapshot:
        now = time.time()
        samples = tuple(
            Sample(m.pop("instance", ""), m.pop("__name__"), tuple(sorted(m.items())), value)
            for m, value in self._query('{__name__=~"sagewalk_.+"}'))
        states = []
        for m, value in self._query('up{job=~"sagewalk.*"}'):
            role = m.get("job", "").removeprefix("sagewalk-").rstrip("s")
            states.append(TargetState(m.get("instance", ""), role, value == 1.0,
                                      "" if value == 1.0 else "scrape failing"))
        return Snapshot(now, tuple(states), samples)

    def _query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        try:
            with urllib.request.urlopen(url, timeout=self._timeout) as reply:
                body = json.load(reply)
        except (OSError, ValueError) as err:
            raise SourceError(f"Prometheus at {self.url}: {_reason(err)}; check "
                              "monitoring.prometheus_url or leave it empty to read the "
                              "daemons directly") from err
        return [(dict(r["metric"]), float(r["value"][1])) for r in body["data"]["result"]]

    def close(self) -> None:
        pass


class SourceError(SagewalkError, OSError):  # OSError: what callers caught before
    """The configured Prometheus server could not be read."""


def source_from_config(config, prometheus_url: str | None = None):
    """A PrometheusSource when a server URL is given or configured, else a
    DaemonSource over the configured endpoints (re-read each refresh, so
    producers the sampler adds later appear)."""
    url = prometheus_url if prometheus_url is not None else config.monitoring.prometheus_url
    if url:
        return PrometheusSource(url)
    return DaemonSource(lambda: targets_from_config(config.monitoring, config.worker))


def targets_from_config(monitoring, worker) -> list[Target]:
    """Trainer and sampler at their configured ports, producers from the SD file
    (or base_port + i for each configured producer when there is no SD file)."""
    host = monitoring.host
    targets = []
    if monitoring.trainer_port:
        targets.append(Target(f"{host}:{monitoring.trainer_port}", "trainer"))
    if monitoring.sampler_port:
        targets.append(Target(f"{host}:{monitoring.sampler_port}", "sampler"))
    if monitoring.sd_file:
        try:
            targets.extend(Target(address, "producer")
                           for address, _ in read_sd_file(monitoring.sd_file))
        except DiscoveryError as err:
            # Edited by hand or corrupt: show the daemons still, try again next refresh.
            log.warning("producers not listed: %s", err)
    elif monitoring.producer_base_port:
        targets.extend(Target(f"{host}:{monitoring.producer_base_port + i}", "producer")
                       for i in range(worker.producers))
    return targets


def _reason(err: Exception) -> str:
    if isinstance(err, urllib.error.URLError) and not isinstance(err, urllib.error.HTTPError):
        err = err.reason if isinstance(err.reason, Exception) else err
    return getattr(err, "strerror", None) or str(err) or type(err).__name__
