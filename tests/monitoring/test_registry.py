"""The Prometheus hook records catalogued metrics exactly and never raises."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from monitoring.registry import PrometheusHook


def _hook(role: str = "") -> PrometheusHook:
    return PrometheusHook(CollectorRegistry(), role)


def _value(h: PrometheusHook, name: str, **labels):
    return h.registry.get_sample_value(name, labels)


@given(st.lists(st.tuples(st.sampled_from("0123"), st.floats(0, 1e6)), max_size=30))
def test_counter_sums_increments_per_label(incs):
    h = _hook()
    for producer, value in incs:
        h.inc("sagewalk_producer_batches_total", value, producer=producer)
    for producer in "0123":
        expected = sum(v for p, v in incs if p == producer)
        got = _value(h, "sagewalk_producer_batches_total", producer=producer)
        assert (got or 0.0) == pytest.approx(expected)


def test_gauge_set_and_histogram_observe():
    h = _hook()
    h.set("sagewalk_train_loss", 0.7)
    h.set("sagewalk_train_loss", 0.4)
    h.inc("sagewalk_prefetch_queue_batches", 3)
    for seconds in (0.002, 0.02, 0.2):
        h.observe("sagewalk_train_step_seconds", seconds)
    assert _value(h, "sagewalk_train_loss") == 0.4
    assert _value(h, "sagewalk_prefetch_queue_batches") == 3
    assert _value(h, "sagewalk_train_step_seconds_count") == 3
    assert _value(h, "sagewalk_train_step_seconds_bucket", le="0.025") == 2
    assert _value(h, "sagewalk_train_step_seconds_sum") == pytest.approx(0.222)


def test_label_values_are_stringified():
    h = _hook()
    h.set("sagewalk_validation_hit_rate", 0.5, k=10)
    assert _value(h, "sagewalk_validation_hit_rate", k="10") == 0.5


def test_only_reported_metrics_are_exposed_and_role_counters_start_at_zero():
    h = _hook("trainer")
    assert _value(h, "sagewalk_tickets_issued_total") == 0.0   # trainer's, unlabelled
    assert _value(h, "sagewalk_train_step_seconds_count") == 0.0
    assert _value(h, "sagewalk_train_loss") is None            # gauges wait for a value
    assert _value(h, "sagewalk_producer_restarts_total") is None  # the sampler's
    producer = _hook("producer")
    assert _value(producer, "sagewalk_tickets_issued_total") is None


@pytest.mark.parametrize("call, name, value, labels, why", [
    ("inc", "sagewalk_no_such_total", 1, {}, "unknown metric"),
    ("set", "sagewalk_train_loss", 1, {"producer": "1"}, "takes labels"),
    ("inc", "sagewalk_producer_batches_total", 1, {}, "takes labels"),
    ("set", "sagewalk_tickets_issued_total", 1, {}, "does not apply"),
    ("observe", "sagewalk_train_loss", 1, {}, "does not apply"),
    ("inc", "sagewalk_tickets_issued_total", -1, {}, "refused"),
    ("set", "sagewalk_gpu_utilization_ratio", 1, {"gpu": "0"}, "collected by monitoring"),
])
def test_bad_calls_warn_once_and_are_dropped(caplog, call, name, value, labels, why):
    h = _hook()
    with caplog.at_level(logging.WARNING, logger="monitoring.registry"):
        for _ in range(3):
            getattr(h, call)(name, value, **labels)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and why in warnings[0] and name in warnings[0], warnings
    exposed = {s.name for fam in h.registry.collect() for s in fam.samples}
    assert not any(s.startswith(name) for s in exposed if name != "sagewalk_tickets_issued_total")


@settings(max_examples=200)
@given(call=st.sampled_from(["inc", "set", "observe"]),
       name=st.one_of(st.text(max_size=40), st.sampled_from(
           ["sagewalk_train_loss", "sagewalk_producer_batches_total", "sagewalk_epoch",
            "sagewalk_sampling_seconds", "sagewalk_rejected_messages_total"])),
       value=st.one_of(st.floats(allow_nan=True), st.integers(-10, 10)),
       labels=st.dictionaries(st.sampled_from(["producer", "reason", "k", "x"]),
                              st.one_of(st.text(max_size=5), st.integers()), max_size=2))
def test_no_call_ever_raises(call, name, value, labels):
    getattr(_hook(), call)(name, value, **labels)
