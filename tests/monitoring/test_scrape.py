"""Reading samples from live exporters and from the text format."""

from __future__ import annotations

import pytest

from monitoring.discovery import write_sd_file
from monitoring.exporter import serve_metrics
from sagewalk.config import from_dict
from monitoring.scrape import (DaemonSource, PrometheusSource, SourceError, Target,
                               parse_metrics, targets_from_config)
from prom_free import free_port


def test_parse_keeps_only_sagewalk_series_with_labels():
    text = ('# TYPE sagewalk_train_loss gauge\nsagewalk_train_loss 0.5\n'
            '# TYPE process_open_fds gauge\nprocess_open_fds 9\n'
            '# TYPE sagewalk_rejected_messages_total counter\n'
            'sagewalk_rejected_messages_total{reason="digest"} 3\n')
    samples = parse_metrics("h:1", text)
    assert [(s.name, s.labels, s.value) for s in samples] == [
        ("sagewalk_train_loss", (), 0.5),
        ("sagewalk_rejected_messages_total", (("reason", "digest"),), 3.0)]
    assert samples[1].label("reason") == "digest" and samples[0].instance == "h:1"


def test_daemon_source_scrapes_live_and_reports_dead_targets():
    server = serve_metrics("127.0.0.1", 0, role="trainer", instance="t", gpu=False)
    dead = f"127.0.0.1:{free_port()}"
    try:
        server.hook.set("sagewalk_train_loss", 0.25)
        source = DaemonSource(lambda: [Target(f"127.0.0.1:{server.port}", "trainer"),
                                       Target(dead, "producer")], timeout=1)
        snap = source.snapshot()
        source.close()
    finally:
        server.close()
    states = {t.address: t for t in snap.targets}
    assert states[f"127.0.0.1:{server.port}"].up
    assert not states[dead].up and "refused" in states[dead].error.lower()
    loss = [s for s in snap.samples if s.name == "sagewalk_train_loss"]
    assert loss[0].value == 0.25 and snap.roles()[loss[0].instance] == "trainer"


def test_targets_from_config_uses_sd_file_or_base_ports(tmp_path):
    sd = tmp_path / "sd.json"
    write_sd_file(sd, [("127.0.0.1", 7001)])
    config = from_dict({"monitoring": {"sampler_port": 0, "sd_file": str(sd)},
                        "worker": {"producers": 3}})
    assert targets_from_config(config.monitoring, config.worker) == [
        Target("127.0.0.1:9750", "trainer"), Target("127.0.0.1:7001", "producer")]
    config = from_dict({"monitoring": {"sampler_port": 0}, "worker": {"producers": 3}})
    assert [t.address for t in targets_from_config(config.monitoring, config.worker)][1:] == [
        "127.0.0.1:9760", "127.0.0.1:9761", "127.0.0.1:9762"]


def test_unreachable_prometheus_says_what_to_check():
    with pytest.raises(SourceError, match="monitoring.prometheus_url"):
        PrometheusSource(f"http://127.0.0.1:{free_port()}", timeout=1).snapshot()
