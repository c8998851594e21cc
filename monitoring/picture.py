"""The operator's picture: what the dashboard charts and `sagewalk status` prints.

Two snapshots a few seconds apart give rates (counters are per process, so a
restarted producer's reset counts as a reset, not as negative throughput).
A value is None when no process reports it (e.g. no GPU), so the page and
the terminal show a gap rather than a made-up zero.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

from monitoring.scrape import Sample, Snapshot, TargetState


@dataclass(frozen=True)
class ChartSpec:
    key: str
    title: str
    unit: str


CHARTS: tuple[ChartSpec, ...] = (
    ChartSpec("throughput", "Throughput", "batches/s"),
    ChartSpec("queue", "Queue depth", "batches"),
    ChartSpec("compute", "GPU / busy ratio", "ratio"),
    ChartSpec("loss", "Training loss", "loss"),
    ChartSpec("validation", "Validation hit-rate", "ratio"),
    ChartSpec("producers", "Producers alive", "processes"),
    ChartSpec("rejected", "Rejected messages", "messages/s"),
    ChartSpec("latency", "Mean latency", "seconds"),
)


@dataclass(frozen=True)
class Picture:
    time: float
    source: str
    targets: tuple[TargetState, ...]
    tiles: dict[str, float | None]
    charts: dict[str, dict[str, float | None]]

    def to_dict(self) -> dict:
        return asdict(self)


class _View:
    """Sums, label breakdowns and rates over one snapshot (and the one before)."""

    def __init__(self, prev: Snapshot | None, cur: Snapshot) -> None:
        self.cur = cur
        self.dt = cur.time - prev.time if prev is not None else 0.0
        self.roles = cur.roles()
        self.up_roles = {t.role for t in cur.targets if t.up}
        self.before = {s.key: s.value for s in prev.samples} if prev is not None else {}
        # A series that appears in a process already answering before started from 0
        # (labelled counters exist from their first increment); one in a new process
        # has no known start.
        self.seen = {t.address for t in prev.targets if t.up} if prev is not None else set()

    def samples(self, name: str, role: str | None = None) -> list[Sample]:
        return [s for s in self.cur.samples
                if s.name == name and (role is None or self.roles.get(s.instance) == role)]

    def total(self, name: str, role: str | None = None) -> float | None:
        found = self.samples(name, role)
        return sum(s.value for s in found) if found else None

    def by(self, name: str, label: str, role: str | None = None) -> dict[str, float]:
        out: dict[str, float] = {}
        for s in self.samples(name, role):
            out[s.label(label)] = out.get(s.label(label), 0.0) + s.value
        return out

    def delta(self, name: str, label: str = "", role: str | None = None) -> dict[str, float]:
        """Increase of a counter since the previous snapshot, per `label` value."""
        out: dict[str, float] = {}
        for s in self.samples(name, role):
            before = self.before.get(s.key, 0.0 if s.instance in self.seen else None)
            if before is None:
                continue  # a new process: no rate until the next refresh
            increase = s.value - before if s.value >= before else s.value  # reset
            out[s.label(label)] = out.get(s.label(label), 0.0) + increase
        return out

    def rate(self, name: str, role: str) -> float | None:
        """Per-second increase summed over processes; 0 when `role` is up but has
        not reported the counter yet (a counter that never moved)."""
        if self.dt <= 0:
            return None
        increase = self.delta(name, role=role)
        if increase:
            return sum(increase.values()) / self.dt
        return 0.0 if role in self.up_roles else None

    def mean(self, histogram: str) -> float | None:
        """Mean observation over the interval from a histogram's _sum and _count."""
        count = sum(self.delta(f"{histogram}_count").values())
        return sum(self.delta(f"{histogram}_sum").values()) / count if count else None


def picture(prev: Snapshot | None, cur: Snapshot, source: str = "") -> Picture:
    """The picture at `cur`; rates need `prev` (None on the first refresh)."""
    v = _View(prev, cur)
    charts = {
        "throughput": _throughput(v),
        "queue": _queue(v),
        "compute": _compute(v),
        "loss": {"loss": v.total("sagewalk_train_loss")},
        "validation": {f"hit@{k}": value for k, value in
                       sorted(v.by("sagewalk_validation_hit_rate", "k").items(),
                              key=lambda kv: int(kv[0]) if kv[0].isdigit() else 0)},
        "producers": _producers(v),
        "rejected": _rejected(v),
        "latency": {"sampling": v.mean("sagewalk_sampling_seconds"),
                    "train step": v.mean("sagewalk_train_step_seconds")},
    }
    charts = {key: _finite(lines) for key, lines in charts.items()}
    return Picture(cur.time, source, cur.targets, _finite(_tiles(v)), charts)


def _throughput(v: _View) -> dict[str, float | None]:
    lines: dict[str, float | None] = {}
    if v.dt > 0:
        produced = v.delta("sagewalk_producer_batches_total", "producer")
        for producer in sorted(produced, key=_natural):
            lines[f"producer {producer}"] = produced[producer] / v.dt
    lines["trained"] = v.rate("sagewalk_batches_accepted_total", "trainer")
    return lines


def _queue(v: _View) -> dict[str, float | None]:
    lines = {"prefetch": v.total("sagewalk_prefetch_queue_batches"),
             "in flight, all": v.total("sagewalk_batches_in_flight")}
    in_flight = v.by("sagewalk_batches_in_flight", "producer")
    for producer in sorted(in_flight, key=_natural):
        lines[f"in flight, producer {producer}"] = in_flight[producer]
    return lines


def _compute(v: _View) -> dict[str, float | None]:
    wait = v.rate("sagewalk_trainer_data_wait_seconds_total", "trainer")
    # Waits are counted when they end, so one long wait can land in a short
    # window; as a share of wall time it cannot exceed 1.
    lines = {"busy": v.total("sagewalk_trainer_busy_ratio"),
             "data wait": None if wait is None else min(wait, 1.0)}
    util = v.by("sagewalk_gpu_utilization_ratio", "gpu")
    for gpu in sorted(util, key=_natural):
        lines[f"gpu {gpu}"] = util[gpu]
    return lines


def _producers(v: _View) -> dict[str, float | None]:
    endpoints = [t for t in v.cur.targets if t.role == "producer"]
    return {"connected (trainer)": v.total("sagewalk_producers_alive", "trainer"),
            "running (sampler)": v.total("sagewalk_producers_alive", "sampler"),
            "endpoints up": float(sum(t.up for t in endpoints)) if endpoints else None}


def _rejected(v: _View) -> dict[str, float | None]:
    lines = {"all reasons": v.rate("sagewalk_rejected_messages_total", "trainer")}
    if v.dt > 0:
        for reason, increase in sorted(v.delta("sagewalk_rejected_messages_total",
                                               "reason").items()):
            lines[reason] = increase / v.dt
    return lines


def _tiles(v: _View) -> dict[str, float | None]:
    checkpoint = v.total("sagewalk_last_checkpoint_timestamp_seconds")
    return {
        "epoch": v.total("sagewalk_epoch"),
        "epoch progress": v.total("sagewalk_epoch_progress_ratio"),
        "learning rate": v.total("sagewalk_learning_rate"),
        "hard negatives": v.total("sagewalk_curriculum_hard_negatives"),
        "examples/s trained": v.rate("sagewalk_train_examples_total", "trainer"),
        "checkpoint age (s)": None if not checkpoint else max(0.0, time.time() - checkpoint),
        "rejected": v.total("sagewalk_rejected_messages_total"),
        "duplicates": v.total("sagewalk_duplicate_batches_total"),
        "gaps": v.total("sagewalk_gap_batches_total"),
        "producer restarts": v.total("sagewalk_producer_restarts_total"),
        "gpu memory (bytes)": v.total("sagewalk_gpu_memory_used_bytes"),
    }


def _finite(values: dict[str, float | None]) -> dict[str, float | None]:
    # A gauge may legitimately read NaN (e.g. loss diverged); JSON and charts
    # cannot carry it, and a gap is the honest rendering.
    return {k: v if v is not None and math.isfinite(v) else None for k, v in values.items()}


def _natural(label: str) -> tuple:
    return (0, int(label), "") if label.isdigit() else (1, 0, label)
