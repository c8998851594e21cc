"""Every metric sagewalk reports: the single list of names, types, help and labels.

Stages report through `monitoring.hook` with these names; the exporter builds
its Prometheus collectors from this list, and a test greps the code base for
`hook.inc/set/observe("sagewalk_...")` calls and checks each name is here, so a
typo fails CI instead of silently vanishing.  Names follow the Prometheus
conventions: `sagewalk_` prefix, base units (`_seconds`, `_bytes`, `_ratio`),
`_total` on counters.

Need a metric that is missing?  Add an entry (additive edits only: renaming
one breaks dashboards, alerts and everyone's hook calls).

This module imports nothing beyond the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass

COUNTER = "counter"
GAUGE = "gauge"
HISTOGRAM = "histogram"

# A batch is built in milliseconds to seconds; a training step on a GPU takes
# milliseconds, on a CPU up to seconds.  One ladder serves both so the two
# latencies can be compared bucket by bucket on the dashboard.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class Metric:
    """One metric: what the hook accepts and what the exporter serves.

    `roles` are the process roles that report it: their exporters publish its
    unlabelled counters and histograms at 0 from the start (so `rate()` and
    alerts see the series before the first event); any process may still report
    any metric.  `collected` metrics are produced at scrape time by a collector
    inside `monitoring` (NVML, build info); stages never report them through
    the hook.
    """

    name: str
    kind: str
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    roles: tuple[str, ...] = ()
    collected: bool = False


def _m(name: str, kind: str, help: str, labels: tuple[str, ...] = (), *,
       by: tuple[str, ...], buckets: tuple[float, ...] = (), collected: bool = False) -> Metric:
    return Metric(name, kind, help, labels, buckets, by, collected)


METRICS: tuple[Metric, ...] = (
    _m("sagewalk_build_info", GAUGE,
       "Always 1; the labels say which sagewalk version and process role is running.",
       ("version", "role"), by=("trainer", "sampler", "producer"), collected=True),
    # -- producers ------------------------------------------------------------
    _m("sagewalk_producer_batches_total", COUNTER,
       "Mini-batches a producer built and sent.", ("producer",), by=("producer",)),
    _m("sagewalk_producer_examples_total", COUNTER,
       "Training examples (query/positive pairs) in the batches a producer sent.",
       ("producer",), by=("producer",)),
    _m("sagewalk_sampling_seconds", HISTOGRAM,
       "Time a producer took to build one mini-batch (walks, neighbourhoods, features).",
       ("producer",), by=("producer",), buckets=LATENCY_BUCKETS),
    _m("sagewalk_wire_bytes_total", COUNTER,
       "Bytes of batch messages on the wire; direction is sent (producer) or received "
       "(trainer).", ("direction",), by=("producer", "trainer")),
    # -- transport, seen from the trainer ---------------------------------------
    _m("sagewalk_batches_in_flight", GAUGE,
       "Tickets issued to a producer whose batch has not arrived yet.", ("producer",),
       by=("trainer",)),
    _m("sagewalk_prefetch_queue_batches", GAUGE,
       "Decoded batches waiting in the trainer's prefetch queue.", by=("trainer",)),
    _m("sagewalk_tickets_issued_total", COUNTER,
       "Batch tickets the trainer issued to producers (reissues included).", by=("trainer",)),
    _m("sagewalk_batches_accepted_total", COUNTER,
       "Batches the trainer accepted for training.", by=("trainer",)),
    _m("sagewalk_duplicate_batches_total", COUNTER,
       "Batches dropped because their ticket had already been accepted.", by=("trainer",)),
    _m("sagewalk_gap_batches_total", COUNTER,
       "Tickets reissued because their batch was lost (producer died or timed out).",
       by=("trainer",)),
    _m("sagewalk_rejected_messages_total", COUNTER,
       "Messages the trainer refused, by reason (version, digest, malformed, ...).",
       ("reason",), by=("trainer",)),
    _m("sagewalk_producers_alive", GAUGE,
       "Producers alive: connected ones (trainer) or running processes (sampler).",
       by=("trainer", "sampler")),
    _m("sagewalk_producer_last_heartbeat_timestamp_seconds", GAUGE,
       "Unix time of the last message the trainer received from a producer.",
       ("producer",), by=("trainer",)),
    _m("sagewalk_producer_restarts_total", COUNTER,
       "Producer processes the sampler supervisor restarted after they died.",
       by=("sampler",)),
    # -- training ---------------------------------------------------------------
    _m("sagewalk_trainer_busy_ratio", GAUGE,
       "Share of recent wall time the trainer spent computing rather than waiting for "
       "data (1 = fully fed).", by=("trainer",)),
    _m("sagewalk_trainer_data_wait_seconds_total", COUNTER,
       "Seconds the training loop waited for the next batch (the starvation signal).",
       by=("trainer",)),
    _m("sagewalk_train_step_seconds", HISTOGRAM,
       "Time of one training step: forward, loss, backward, optimiser.",
       by=("trainer",), buckets=LATENCY_BUCKETS),
    _m("sagewalk_train_examples_total", COUNTER,
       "Training examples the trainer has trained on.", by=("trainer",)),
    _m("sagewalk_train_loss", GAUGE, "Loss of the most recent training step.", by=("trainer",)),
    _m("sagewalk_learning_rate", GAUGE, "Current optimiser learning rate.", by=("trainer",)),
    _m("sagewalk_epoch", GAUGE, "Current training epoch (1-based).", by=("trainer",)),
    _m("sagewalk_epoch_progress_ratio", GAUGE,
       "Share of the current epoch's batches trained so far.", by=("trainer",)),
    _m("sagewalk_curriculum_hard_negatives", GAUGE,
       "Hard negatives per example at the current curriculum level.", by=("trainer",)),
    _m("sagewalk_validation_hit_rate", GAUGE,
       "Validation hit-rate at k: share of held-out queries whose positive is in the "
       "top k.", ("k",), by=("trainer",)),
    _m("sagewalk_last_checkpoint_timestamp_seconds", GAUGE,
       "Unix time of the last checkpoint written successfully.", by=("trainer",)),
    _m("sagewalk_checkpoint_failures_total", COUNTER,
       "Checkpoint saves that failed (full disk, permissions); training goes on and the "
       "previous checkpoint stays the newest.", by=("trainer",)),
    # -- devices (collected at scrape time by monitoring.gpu) -------------------
    _m("sagewalk_gpu_utilization_ratio", GAUGE,
       "GPU compute utilisation over NVML's last sample period (0..1).", ("gpu",),
       by=("trainer",), collected=True),
    _m("sagewalk_gpu_memory_used_bytes", GAUGE,
       "GPU memory in use, all processes.", ("gpu",), by=("trainer",), collected=True),
)

BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}


def get(name: str) -> Metric | None:
    """The catalogue entry for `name`, or None when there is none."""
    return BY_NAME.get(name)
