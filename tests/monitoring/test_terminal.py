"""`sagewalk status` text: processes, state and one line per chart."""

from __future__ import annotations

from monitoring.picture import CHARTS, picture
from monitoring.scrape import Sample, Snapshot, TargetState
from monitoring.terminal import format_value, render


def test_render_shows_processes_state_and_every_chart():
    targets = (TargetState("127.0.0.1:9750", "trainer", True),
               TargetState("127.0.0.1:9760", "producer", False, "Connection refused"))
    samples = (Sample("127.0.0.1:9750", "sagewalk_train_loss", (), 0.4321),
               Sample("127.0.0.1:9750", "sagewalk_epoch_progress_ratio", (), 0.25),
               Sample("127.0.0.1:9750", "sagewalk_gpu_memory_used_bytes", (("gpu", "0"),), 3e9))
    text = render(picture(None, Snapshot(0.0, targets, samples), "daemons: x"))
    assert "from daemons: x" in text
    assert "trainer   127.0.0.1:9750         up" in text
    assert "DOWN (Connection refused)" in text
    assert "epoch progress 25%" in text and "gpu memory (bytes) 3.00GB" in text
    assert "loss 0.432" in text
    for chart in CHARTS:
        assert f"{chart.title} ({chart.unit})" in text


def test_format_value():
    assert [format_value(v) for v in (None, 0.0, 3.0, 12.34, 0.01234, 2500.0, 3.2e9)] == [
        "-", "0", "3", "12.3", "0.0123", "2.50k", "3.20G"]
