"""The picture: rates from two snapshots, resets, new processes, gaps for absent data."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitoring.picture import CHARTS, picture
from monitoring.scrape import Sample, Snapshot, TargetState

T, S, P0, P1 = "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4"
TARGETS = (TargetState(T, "trainer", True), TargetState(S, "sampler", True),
           TargetState(P0, "producer", True), TargetState(P1, "producer", True))


def _s(instance, name, value, **labels):
    return Sample(instance, name, tuple(sorted(labels.items())), float(value))


def _snap(t, samples, targets=TARGETS):
    return Snapshot(t, targets, tuple(samples))


def test_rates_per_producer_and_trained():
    before = _snap(100, [_s(P0, "sagewalk_producer_batches_total", 10, producer="0"),
                         _s(P1, "sagewalk_producer_batches_total", 50, producer="1"),
                         _s(T, "sagewalk_batches_accepted_total", 60)])
    after = _snap(102, [_s(P0, "sagewalk_producer_batches_total", 30, producer="0"),
                        _s(P1, "sagewalk_producer_batches_total", 54, producer="1"),
                        _s(T, "sagewalk_batches_accepted_total", 84)])
    p = picture(before, after)
    assert p.charts["throughput"] == {"producer 0": 10.0, "producer 1": 2.0, "trained": 12.0}


def test_a_restarted_producer_counts_from_its_reset_not_negative():
    before = _snap(0, [_s(P0, "sagewalk_producer_batches_total", 500, producer="0")])
    after = _snap(1, [_s(P0, "sagewalk_producer_batches_total", 7, producer="0")])
    assert picture(before, after).charts["throughput"]["producer 0"] == 7.0


def test_new_series_of_a_known_process_start_at_zero_new_process_waits():
    before = _snap(0, [], targets=TARGETS[:3])
    after = _snap(1, [_s(P0, "sagewalk_producer_batches_total", 5, producer="0"),
                      _s(P1, "sagewalk_producer_batches_total", 9, producer="1")])
    lines = picture(before, after).charts["throughput"]
    assert lines["producer 0"] == 5.0 and "producer 1" not in lines


def test_absent_metrics_are_gaps_and_unmoved_counters_of_live_roles_are_zero():
    only_trainer = (TargetState(T, "trainer", True),)
    p = picture(_snap(0, [], only_trainer), _snap(1, [], only_trainer))
    assert p.charts["loss"] == {"loss": None}
    assert p.charts["compute"]["busy"] is None
    assert p.charts["rejected"] == {"all reasons": 0.0}  # trainer up, nothing rejected
    down = (TargetState(T, "trainer", False, "refused"),)
    assert picture(_snap(0, [], down), _snap(1, [], down)).charts["rejected"] == \
        {"all reasons": None}


def test_first_refresh_has_no_rates_but_has_gauges():
    p = picture(None, _snap(5, [_s(T, "sagewalk_train_loss", 0.3),
                                _s(T, "sagewalk_batches_accepted_total", 9)]))
    assert p.charts["loss"]["loss"] == 0.3
    assert p.charts["throughput"]["trained"] is None


def test_roles_come_from_build_info_and_split_producers_alive():
    samples = [_s(T, "sagewalk_producers_alive", 1), _s(S, "sagewalk_producers_alive", 2),
               _s(T, "sagewalk_build_info", 1, role="trainer", version="0")]
    p = picture(None, _snap(0, samples))
    assert p.charts["producers"] == {"connected (trainer)": 1.0, "running (sampler)": 2.0,
                                     "endpoints up": 2.0}


def test_histogram_means_and_rejections_by_reason():
    before = _snap(0, [_s(P0, "sagewalk_sampling_seconds_sum", 1.0, producer="0"),
                       _s(P0, "sagewalk_sampling_seconds_count", 10, producer="0"),
                       _s(T, "sagewalk_rejected_messages_total", 1, reason="digest")])
    after = _snap(2, [_s(P0, "sagewalk_sampling_seconds_sum", 3.0, producer="0"),
                      _s(P0, "sagewalk_sampling_seconds_count", 20, producer="0"),
                      _s(T, "sagewalk_rejected_messages_total", 5, reason="digest"),
                      _s(T, "sagewalk_rejected_messages_total", 2, reason="version")])
    p = picture(before, after)
    assert p.charts["latency"]["sampling"] == pytest.approx(0.2)
    assert p.charts["rejected"] == {"all reasons": 3.0, "digest": 2.0, "version": 1.0}
    assert p.tiles["rejected"] == 7.0


def test_validation_lines_sorted_by_k_and_nan_becomes_a_gap():
    samples = [_s(T, "sagewalk_validation_hit_rate", 0.5, k="100"),
               _s(T, "sagewalk_validation_hit_rate", 0.2, k="10"),
               _s(T, "sagewalk_train_loss", math.nan)]
    p = picture(None, _snap(0, samples))
    assert list(p.charts["validation"]) == ["hit@10", "hit@100"]
    assert p.charts["loss"]["loss"] is None


@given(st.lists(st.tuples(st.integers(0, 3), st.floats(0, 1e9), st.floats(0, 1e9)),
                max_size=12))
def test_rates_are_never_negative_and_every_chart_is_present(counters):
    before = _snap(0, [_s(P0, "sagewalk_producer_batches_total", a, producer=str(i))
                       for i, a, _ in counters])
    after = _snap(1.5, [_s(P0, "sagewalk_producer_batches_total", b, producer=str(i))
                        for i, _, b in counters])
    p = picture(before, after)
    assert set(p.charts) == {c.key for c in CHARTS}
    assert all(v is None or v >= 0 for v in p.charts["throughput"].values())
