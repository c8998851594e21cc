"""The metrics hook every stage reports through.

Stages call the module-level functions with a metric name from the catalogue
(`monitoring/catalogue.py`) and label values:

    from monitoring import hook
    hook.inc("sagewalk_producer_batches_total", producer="3")
    hook.set("sagewalk_prefetch_queue_batches", 5)
    hook.observe("sagewalk_sampling_seconds", 0.012)

Nothing happens until the process installs a real hook (the Prometheus one in
`monitoring.exporter`), so library code and tests pay nothing.  This module
imports nothing beyond the standard library.
"""

from __future__ import annotations

from typing import Protocol


class Hook(Protocol):
    def inc(self, name: str, value: float = 1.0, **labels: str) -> None: ...
    def set(self, name: str, value: float, **labels: str) -> None: ...
    def observe(self, name: str, value: float, **labels: str) -> None: ...


class NullHook:
    """Discards everything: the default."""

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        pass

    def set(self, name: str, value: float, **labels: str) -> None:
        pass

    def observe(self, name: str, value: float, **labels: str) -> None:
        pass


_current: Hook = NullHook()


def install(hook: Hook) -> Hook:
    """Make `hook` receive this process's metrics; returns the previous hook."""
    global _current
    previous, _current = _current, hook
    return previous


def current() -> Hook:
    return _current


def inc(name: str, value: float = 1.0, **labels: str) -> None:
    _current.inc(name, value, **labels)


def set(name: str, value: float, **labels: str) -> None:  # noqa: A001 - mirrors Gauge.set
    _current.set(name, value, **labels)


def observe(name: str, value: float, **labels: str) -> None:
    _current.observe(name, value, **labels)
