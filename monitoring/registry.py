"""The Prometheus hook: routes `hook.inc/set/observe` into one process's registry.

Each process gets its own `CollectorRegistry` (never prometheus_client's global
default registry), so a test can run several exporters in one interpreter and
a killed process takes its values with it: Prometheus sums across per-process
endpoints, nothing here aggregates.

A daemon must never crash because a stage misspelled a metric or passed the
wrong labels: such calls are logged once (with the fix) and dropped.
"""

from __future__ import annotations

import logging
import threading

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from monitoring import catalogue

log = logging.getLogger(__name__)

# `_created` series double every counter and histogram and no sagewalk panel
# or alert reads them.  (Process-wide switch; only monitoring imports the client.)
prometheus_client.disable_created_metrics()

_ALLOWED = {  # hook call -> metric kinds it applies to
    "inc": (catalogue.COUNTER, catalogue.GAUGE),
    "set": (catalogue.GAUGE,),
    "observe": (catalogue.HISTOGRAM,),
}


def _build(metric: catalogue.Metric, registry: CollectorRegistry):
    kwargs = {"labelnames": metric.labels, "registry": registry}
    if metric.kind == catalogue.COUNTER:
        return Counter(metric.name, metric.help, **kwargs)
    if metric.kind == catalogue.GAUGE:
        return Gauge(metric.name, metric.help, **kwargs)
    return Histogram(metric.name, metric.help, buckets=metric.buckets, **kwargs)


class PrometheusHook:
    """A `monitoring.hook.Hook` that records into `registry`.

    Metrics are registered on first use, so a process only exposes what it
    reports (a producer serving `sagewalk_train_loss 0` would be a lie); the
    unlabelled counters and histograms of `role` are registered up front at 0.
    """

    def __init__(self, registry: CollectorRegistry, role: str = "") -> None:
        self.registry = registry
        self._metrics: dict[str, object] = {}
        self._children: dict[tuple, object] = {}
        self._warned: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        for entry in catalogue.METRICS:
            if (role in entry.roles and not entry.collected and not entry.labels
                    and entry.kind != catalogue.GAUGE):
                self._metric(entry)

    def _metric(self, entry: catalogue.Metric):
        with self._lock:
            metric = self._metrics.get(entry.name)
            if metric is None:
                metric = self._metrics[entry.name] = _build(entry, self.registry)
            return metric

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        self._apply("inc", name, value, labels)

    def set(self, name: str, value: float, **labels: str) -> None:
        self._apply("set", name, value, labels)

    def observe(self, name: str, value: float, **labels: str) -> None:
        self._apply("observe", name, value, labels)

    def _apply(self, call: str, name: str, value: float, labels: dict) -> None:
        # Hot path (every batch, every step): a validated call site's child is
        # cached under its exact arguments, skipping lookup and label checks.
        key = (call, name, *labels.items())
        try:
            target = self._children.get(key)
        except TypeError:  # an unhashable label value: validate (and str()) every time
            key, target = None, None
        if target is None:
            target = self._target(call, name, labels)
            if target is None:
                return
            if key is not None:
                self._children[key] = target
        try:
            getattr(target, call)(value)
        except (ValueError, TypeError) as err:  # e.g. a negative counter increment
            self._warn_once(name, f"hook.{call}({name!r}, {value!r}) refused: {err}")

    def _target(self, call: str, name: str, labels: dict):
        entry = catalogue.get(name)
        if entry is None:
            self._warn_once(name, f"unknown metric {name!r} dropped; add it to "
                            "monitoring/catalogue.py or fix the name")
            return None
        if entry.collected:
            self._warn_once(name, f"{name!r} is collected by monitoring itself; "
                            "stages do not report it")
            return None
        if entry.kind not in _ALLOWED[call]:
            self._warn_once(name, f"hook.{call} does not apply to {entry.kind} {name!r}; "
                            f"use {_call_for(entry.kind)}")
            return None
        if set(labels) != set(entry.labels):
            self._warn_once(name, f"{name!r} takes labels {list(entry.labels)}, got "
                            f"{sorted(labels)}; dropped")
            return None
        metric = self._metric(entry)
        if not entry.labels:
            return metric
        return metric.labels(**{k: str(v) for k, v in labels.items()})

    def _warn_once(self, name: str, message: str) -> None:
        with self._lock:
            key = (name, message.split(" ", 1)[0])
            if key in self._warned:
                return
            self._warned.add(key)
        log.warning("metrics: %s", message)


def _call_for(kind: str) -> str:
    return {catalogue.COUNTER: "hook.inc", catalogue.GAUGE: "hook.set or hook.inc",
            catalogue.HISTOGRAM: "hook.observe"}[kind]
