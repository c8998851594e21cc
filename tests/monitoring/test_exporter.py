"""The metrics endpoint: separate registries, probes, build info, promtool."""

from __future__ import annotations

import shutil
import time
import socket
import subprocess
import urllib.error
import urllib.request

import pytest

import sagewalk
from monitoring import catalogue, hook
from monitoring.exporter import MetricsServerError, serve_metrics


def _get(url: str, accept: str = "") -> tuple[int, str, str]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, reply.headers["Content-Type"], reply.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


@pytest.fixture
def server():
    server = serve_metrics("127.0.0.1", 0, role="sampler", instance="test")
    yield server
    server.close()


def test_port_zero_picks_a_free_port_and_serves_build_info(server):
    assert server.port > 0
    status, content_type, body = _get(f"{server.url}/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    assert (f'sagewalk_build_info{{role="sampler",version="{sagewalk.__version__}"}} 1.0'
            in body)
    assert "sagewalk_producer_restarts_total 0.0" in body  # the sampler's counter, at 0
    assert "process_cpu_seconds_total" in body


def test_hook_calls_land_in_this_process_registry(server):
    assert hook.current() is server.hook
    hook.inc("sagewalk_producer_restarts_total", 2)
    hook.set("sagewalk_producers_alive", 4)
    body = _get(f"{server.url}/metrics")[2]
    assert "sagewalk_producer_restarts_total 2.0" in body
    assert "sagewalk_producers_alive 4.0" in body


def test_two_servers_keep_separate_registries(server):
    other = serve_metrics("127.0.0.1", 0, role="producer", instance="1")
    try:
        hook.inc("sagewalk_producer_batches_total", producer="1")  # lands in `other`
        server.hook.set("sagewalk_producers_alive", 1)
        mine, theirs = _get(f"{server.url}/metrics")[2], _get(f"{other.url}/metrics")[2]
        assert "sagewalk_producer_batches_total" not in mine
        assert 'sagewalk_producer_batches_total{producer="1"} 1.0' in theirs
        assert "sagewalk_producers_alive" not in theirs
    finally:
        other.close()
    assert hook.current() is server.hook, "close() must give the hook back"


def test_readiness_flips_through_start_ready_and_drain(server):
    assert _get(f"{server.url}/healthz")[:1] == (200,)
    assert _get(f"{server.url}/readyz")[0::2] == (503, "starting\n")
    server.set_ready(True)
    assert _get(f"{server.url}/readyz")[0::2] == (200, "ready\n")
    server.set_ready(False)
    assert _get(f"{server.url}/readyz")[0::2] == (503, "draining\n")
    assert _get(f"{server.url}/healthz")[0::2] == (200, "ok\n")  # alive while draining
    assert _get(f"{server.url}/nope")[0] == 404


def test_openmetrics_is_negotiated(server):
    status, content_type, body = _get(f"{server.url}/metrics",
                                      "application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith("# EOF")


def test_close_stops_serving_and_restores_the_null_hook():
    before = hook.current()
    server = serve_metrics("127.0.0.1", 0, role="trainer", instance="t", gpu=False)
    port = server.port
    server.close()
    assert hook.current() is before
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_port_in_use_and_bad_role_are_user_errors(server):
    with pytest.raises(MetricsServerError, match=f"127.0.0.1:{server.port}.*free port"):
        serve_metrics("127.0.0.1", server.port, role="trainer", instance="t", gpu=False)
    with pytest.raises(MetricsServerError, match="role must be one of"):
        serve_metrics("127.0.0.1", 0, role="gpu", instance="t")


def _report_everything() -> None:
    for m in catalogue.METRICS:
        if m.collected:
            continue
        call = {"counter": hook.inc, "gauge": hook.set, "histogram": hook.observe}[m.kind]
        call(m.name, 0.5, **{label: "a" for label in m.labels})
        call(m.name, 1.5, **{label: "b" for label in m.labels})


@pytest.mark.prometheus
def test_promtool_accepts_a_full_dump(server, tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (apt-get install prometheus)")
    _report_everything()
    body = _get(f"{server.url}/metrics")[2]
    reported = {m.name for m in catalogue.METRICS if not m.collected} | {"sagewalk_build_info"}
    for name in reported:
        assert f"# TYPE {name.removesuffix('_total')}" in body, name
    (tmp_path / "metrics.txt").write_text(body)
    check = subprocess.run([promtool, "check", "metrics"], input=body, text=True,
                           capture_output=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr


class _Broken:
    """A collector with a bug: raises on every scrape."""

    def collect(self):
        raise RuntimeError("collector bug")

    def describe(self):
        return []


def test_a_broken_collector_fails_the_scrape_not_the_endpoint(server):
    server.registry.register(_Broken())
    status, _, body = _get(f"{server.url}/metrics")
    assert status == 500 and "collector bug" in body
    assert _get(f"{server.url}/healthz")[0] == 200


DRAINING_DAEMON = """
import signal, sys, threading, time
from monitoring.exporter import serve_metrics
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())   # the daemon's own drain handler
signal.signal(signal.SIGINT, signal.SIG_IGN)           # a signal it ignores
server = serve_metrics("127.0.0.1", 0, role="producer", instance="d")
server.drain_on_signals()
server.set_ready(True)
print(server.port, flush=True)
stop.wait(30)
sys.stdin.readline()        # "finishing its last batches": until the test has looked
print("drained", flush=True)
server.close()
"""


def test_readiness_flips_to_draining_when_the_daemon_starts_its_drain():
    import os
    import signal
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    # The daemon stays in its drain until the test writes a line: no sleep to
    # outlast on a loaded machine.
    proc = subprocess.Popen([sys.executable, "-c", DRAINING_DAEMON], stdout=subprocess.PIPE,
                            stdin=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(root)))
    try:
        url = f"http://127.0.0.1:{int(proc.stdout.readline())}"
        assert _get(f"{url}/readyz")[0::2] == (200, "ready\n")
        proc.send_signal(signal.SIGINT)  # ignored by the daemon: still ready
        assert _get(f"{url}/readyz")[0::2] == (200, "ready\n")
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 60
        while _get(f"{url}/readyz")[0] == 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _get(f"{url}/readyz")[0::2] == (503, "draining\n")
        assert _get(f"{url}/healthz")[0] == 200  # alive while it drains
        proc.stdin.write("done\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "drained"
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()
