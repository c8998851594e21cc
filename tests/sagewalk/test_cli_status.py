"""`sagewalk status` against a live exporter, and with nothing running."""

from __future__ import annotations

import json
import socket

from monitoring.exporter import serve_metrics
from sagewalk.cli import main


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_status_reads_the_daemons(capsys):
    server = serve_metrics("127.0.0.1", 0, role="trainer", instance="t", gpu=False)
    try:
        server.hook.set("sagewalk_train_loss", 0.75)
        server.hook.inc("sagewalk_batches_accepted_total", 3)
        code = main(["status", "--json", "--interval", "0.1",
                     "--set", f"monitoring.trainer_port={server.port}",
                     "--set", "monitoring.sampler_port=0",
                     "--set", "monitoring.producer_base_port=0"])
    finally:
        server.close()
    state = json.loads(capsys.readouterr().out)
    assert code == 0
    assert state["charts"]["loss"] == {"loss": 0.75}
    assert state["charts"]["throughput"] == {"trained": 0.0}  # nothing accepted in between
    assert [t["up"] for t in state["targets"]] == [True]


def test_status_with_nothing_running_says_how_to_start(capsys):
    code = main(["status", "--interval", "0", "--set", f"monitoring.trainer_port={_closed_port()}",
                 "--set", "monitoring.sampler_port=0", "--set", "monitoring.producer_base_port=0"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "DOWN" in out and "sagewalk up" in err


def test_status_with_unreachable_prometheus_is_a_user_error(capsys):
    code = main(["status", "--interval", "0", "--prometheus", f"http://127.0.0.1:{_closed_port()}"])
    assert code == 2
    assert "monitoring.prometheus_url" in capsys.readouterr().err
