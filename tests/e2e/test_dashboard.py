"""`sagewalk dashboard` in a real headless Chromium: with the real pipeline
running (`sagewalk up` on a small synthetic store), the page renders every
chart with data points; a screenshot is kept under the pytest tmp dir (and
copied to docs/dashboard.png when SAGEWALK_DOCS_SCREENSHOT=1).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from monitoring.picture import CHARTS
from pipeline_run import ROOT, PipelineRun
from prom_server import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="needs headless chromium (apt-get install chromium)"),
]


def _picture(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/api/picture", timeout=5) as reply:
        return json.load(reply)


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dashboard")
    run = PipelineRun(tmp, trainer_port=free_port(), sampler_port=free_port())
    proc = None
    try:
        run.start()
        port = free_port()
        # The dashboard reads the same config as the daemons: their ports and the SD file.
        proc = subprocess.Popen(
            [sys.executable, "-m", "sagewalk", "dashboard", "--config", str(run.config),
             "--port", str(port), "--set", "monitoring.dashboard_refresh_s=0.5"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        url = f"http://127.0.0.1:{port}"
        _wait_for_history(url, proc, points=8)
        yield url, tmp
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
        run.stop()


def _wait_for_history(url: str, proc: subprocess.Popen, points: int) -> None:
    """Until `points` refreshes have data in every chart (validation runs every
    10 steps, so its first point comes a little after the others)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"sagewalk dashboard exited {proc.returncode}: "
                                 f"{proc.stdout.read()}")
        try:
            history = _picture(url)["history"]
        except OSError:
            history = []  # not listening yet
        charted = [p for p in history
                   if all(any(v is not None for v in lines.values())
                          for lines in p["charts"].values())]
        if len(charted) >= points:
            return
        time.sleep(0.3)
    raise AssertionError(f"dashboard had fewer than {points} full refreshes after 60 s")


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'chromium-profile'}",
                           "--virtual-time-budget=4000", *args],
                          capture_output=True, text=True, timeout=90)


def test_page_renders_every_chart_with_data_points(dashboard):
    url, tmp = dashboard
    run = _chromium(tmp, "--dump-dom", f"{url}/")
    dom = run.stdout
    assert "<main" in dom, run.stderr[-2000:]
    charts = dict(re.findall(r'<svg[^>]*data-chart="(\w+)"[^>]*data-points="(\d+)"', dom))
    assert set(charts) == {c.key for c in CHARTS}, charts
    assert all(int(n) >= 2 for n in charts.values()), f"charts without data: {charts}"
    for key in charts:  # each chart draws at least one line through its points
        block = dom.split(f'data-chart="{key}"', 1)[1].split("</svg>", 1)[0]
        assert re.search(r'<polyline points="[\d.]+,[\d.]+ [\d.]+,[\d.]+', block), key
    assert len(re.findall(r'class="target up"', dom)) == 4, "trainer, sampler, 2 producers up"
    assert 'class="target down"' not in dom
    assert "no data yet" not in dom


def test_screenshot_is_kept(dashboard):
    url, tmp = dashboard
    shot = tmp / "dashboard.png"
    run = _chromium(tmp, f"--screenshot={shot}", "--window-size=1400,940", f"{url}/")
    assert shot.exists(), run.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    if os.environ.get("SAGEWALK_DOCS_SCREENSHOT") == "1":
        shutil.copy(shot, ROOT / "docs" / "dashboard.png")
