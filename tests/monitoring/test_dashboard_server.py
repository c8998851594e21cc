"""The dashboard server (monitoring/dashboard.py): the picture API over live
exporters, the static page.  (Named apart from tests/e2e/test_dashboard.py:
test modules in directories without __init__.py need unique basenames.)"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from monitoring.dashboard import DashboardError, Monitor, serve_dashboard
from monitoring.exporter import serve_metrics
from monitoring.picture import CHARTS
from monitoring.scrape import DaemonSource, PrometheusSource, Target
from prom_free import free_port


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.headers["Content-Type"], reply.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


@pytest.fixture
def running():
    exporter = serve_metrics("127.0.0.1", 0, role="trainer", instance="t", gpu=False)
    source = DaemonSource(lambda: [Target(f"127.0.0.1:{exporter.port}", "trainer")])
    monitor = Monitor(source, interval=60, keep=3)
    server = serve_dashboard(monitor, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield exporter, monitor, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    monitor.close()
    exporter.close()


def test_api_serves_history_of_pictures(running):
    exporter, monitor, url = running
    for step in range(5):  # keep=3: the oldest two fall off
        exporter.hook.inc("sagewalk_batches_accepted_total", 10)
        exporter.hook.set("sagewalk_train_loss", 1.0 / (step + 1))
        monitor.refresh()
    status, content_type, body = _get(f"{url}/api/picture")
    state = json.loads(body)
    assert status == 200 and content_type == "application/json"
    assert [c["key"] for c in state["charts"]] == [c.key for c in CHARTS]
    assert [p["charts"]["loss"]["loss"] for p in state["history"]] == [1 / 3, 1 / 4, 1 / 5]
    assert all(p["charts"]["throughput"]["trained"] > 0 for p in state["history"])
    assert state["history"][-1]["targets"][0]["up"] is True and state["error"] == ""


def test_page_and_assets_are_served_from_the_package_only(running):
    _, _, url = running
    status, content_type, body = _get(f"{url}/")
    assert status == 200 and content_type.startswith("text/html")
    assert b"/static/dashboard.js" in body
    for asset in ("dashboard.js", "dashboard.css"):
        assert _get(f"{url}/static/{asset}")[0] == 200
    assert b"http" not in _get(f"{url}/static/dashboard.js")[2].replace(
        b"http://www.w3.org/2000/svg", b""), "the page must not load anything external"
    assert _get(f"{url}/static/../dashboard.py")[0] == 404
    assert _get(f"{url}/static/%2e%2e%2fdashboard.py")[0] == 404


def test_a_failing_source_keeps_the_page_up_and_says_why():
    monitor = Monitor(PrometheusSource(f"http://127.0.0.1:{free_port()}", timeout=1))
    assert monitor.refresh() is None
    state = monitor.state()
    assert state["history"] == [] and "monitoring.prometheus_url" in state["error"]


def test_port_in_use_is_a_user_error(running):
    _, monitor, url = running
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(DashboardError, match="--port 0"):
        serve_dashboard(monitor, "127.0.0.1", port)


class _Replay:
    """A source that returns prepared snapshots in order (a recorded run)."""

    def __init__(self, snapshots):
        self.snapshots = list(snapshots)

    def snapshot(self):
        return self.snapshots.pop(0)

    def describe(self):
        return "replay"


def test_rates_span_the_rate_window_not_just_the_last_refresh():
    from monitoring.scrape import Sample, Snapshot, TargetState
    target = (TargetState("t:1", "trainer", True),)
    # Bursty: 10 batches accepted at t=1, none in the next refreshes.
    counts = [(0.0, 0), (1.0, 10), (2.0, 10), (3.0, 10), (7.0, 10)]
    snaps = [Snapshot(t, target, (Sample("t:1", "sagewalk_batches_accepted_total", (), n),))
             for t, n in counts]
    monitor = Monitor(_Replay(snaps), rate_window=5.0)
    rates = [monitor.refresh().charts["throughput"]["trained"] for _ in counts]
    # t=7: the window starts at t=2 (the newest snapshot >= 5 s old): nothing since.
    assert rates == [None, 10.0, 5.0, 10 / 3, 0.0]
