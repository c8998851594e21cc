"""`sagewalk dashboard`: a live page charting the picture of the running pipeline.

A `Monitor` thread refreshes the picture every few seconds from a source
(the daemons' /metrics or a Prometheus server) and keeps a short history; the
page (`monitoring/static/`, plain JS drawing SVG, no external assets) polls
`/api/picture` and redraws.  Serving history from here means a freshly opened
page shows the last minutes at once instead of starting empty.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from monitoring.picture import CHARTS, Picture, picture
from monitoring.scrape import Snapshot
from common.errors import SagewalkError

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


class Monitor:
    """Refreshes the picture from `source` every `interval` seconds, keeping `keep`.

    Rates are taken over at least `rate_window` seconds (against an older
    snapshot than the last one): producers send in bursts as credits return, and
    a rate over a sub-second refresh would swing between zero and peaks.
    """

    def __init__(self, source, *, interval: float = 2.0, keep: int = 300,
                 rate_window: float = 5.0) -> None:
        self.source = source
        self.interval = interval
        self.rate_window = rate_window
        self._history: deque[Picture] = deque(maxlen=keep)
        self._recent: deque[Snapshot] = deque()
        self._error = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dashboard-refresh", daemon=True)

    def refresh(self) -> Picture | None:
        """Take one snapshot and append its picture; None (error kept) on failure."""
        try:
            snapshot = self.source.snapshot()
        except OSError as err:  # Prometheus unreachable: keep the page up, say why
            with self._lock:
                self._error = str(err)
            log.warning("dashboard refresh failed: %s", err)
            return None
        current = picture(self._baseline(snapshot.time), snapshot, self.source.describe())
        with self._lock:
            self._recent.append(snapshot)
            self._history.append(current)
            self._error = ""
        return current

    def _baseline(self, now: float) -> Snapshot | None:
        """The newest snapshot at least `rate_window` old (else the oldest kept)."""
        while len(self._recent) > 1 and now - self._recent[1].time >= self.rate_window:
            self._recent.popleft()
        return self._recent[0] if self._recent else None

    def state(self) -> dict:
        """What /api/picture returns: chart specs, the history and the last error."""
        with self._lock:
            history = [p.to_dict() for p in self._history]
            error = self._error
        return {"interval": self.interval, "error": error,
                "charts": [asdict(c) for c in CHARTS], "history": history}

    def start(self) -> "Monitor":
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 5)
        close = getattr(self.source, "close", None)
        if close is not None:
            close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self.interval)


class DashboardError(SagewalkError):
    """The dashboard could not start."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    monitor: Monitor


def serve_dashboard(monitor: Monitor, host: str, port: int) -> ThreadingHTTPServer:
    """Bind the page and its API; the caller runs `serve_forever()` (or a thread)."""
    try:
        server = _Server((host, port), _Handler)
    except OSError as err:
        raise DashboardError(f"cannot serve the dashboard on {host}:{port}: "
                             f"{err.strerror or err}; pass --port 0 for a free port or set "
                             "monitoring.dashboard_port") from err
    server.monitor = monitor
    return server


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = urlsplit(self.path).path
        if path == "/api/picture":
            body = json.dumps(self.server.monitor.state(), allow_nan=False).encode()
            self._reply(200, body, "application/json")
        elif path in ("/", "/index.html"):
            self._static("index.html")
        elif path.startswith("/static/"):
            self._static(path.removeprefix("/static/"))
        elif path == "/healthz":
            self._reply(200, b"ok\n", "text/plain")
        else:
            self._reply(404, b"not found\n", "text/plain")

    def _static(self, name: str) -> None:
        # Only files that ship in the package directory itself: no path tricks.
        known = {p.name: p for p in STATIC.iterdir() if p.is_file()}
        if name not in known:
            self._reply(404, b"not found\n", "text/plain")
            return
        file = known[name]
        self._reply(200, file.read_bytes(), _TYPES.get(file.suffix, "application/octet-stream"))

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        log.debug("dashboard %s: " + format, self.address_string(), *args)
