"""One process's metrics endpoint: /metrics, /healthz and /readyz on a thread.

    server = serve_metrics("127.0.0.1", 0, role="producer", instance="3")
    server.port            # the bound port (0 asks the OS for a free one)
    server.set_ready(True) # after start-up; set_ready(False) when draining
    server.close()

`serve_metrics` also installs a Prometheus hook into `monitoring.hook`, so the
stages' `hook.inc/set/observe` calls land in this process's own registry.

Probes: `/healthz` answers 200 while the process serves at all (liveness);
`/readyz` answers 200 only between `set_ready(True)` and `set_ready(False)`,
and 503 with `starting` or `draining` otherwise, so an orchestrator neither
sends work too early nor kills a process that is still finishing its batches.
"""

from __future__ import annotations

import logging
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Gauge, ProcessCollector
from prometheus_client.exposition import choose_encoder

from monitoring import catalogue, hook
from monitoring.registry import PrometheusHook
from common import __version__
from common.errors import SagewalkError

log = logging.getLogger(__name__)

ROLES = ("trainer", "sampler", "producer")


class MetricsServerError(SagewalkError):
    """The metrics endpoint could not start (bad role, port in use, ...)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a slow scraper must never hold up process exit
    allow_reuse_address = True
    metrics_server: "MetricsServer"


class MetricsServer:
    """A running endpoint; see the module docstring."""

    def __init__(self, httpd: _Server, registry: CollectorRegistry, metrics_hook: PrometheusHook,
                 *, role: str, instance: str) -> None:
        self._httpd = httpd
        self.registry = registry
        self.hook = metrics_hook
        self.role = role
        self.instance = instance
        self.host, self.port = httpd.server_address[:2]
        self._state = "starting"
        self._previous_hook: hook.Hook | None = None
        self._thread = threading.Thread(target=httpd.serve_forever, name=f"metrics-{role}",
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        httpd.metrics_server = self  # the request handler reads registry and state here

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def state(self) -> str:
        """'starting', 'ready' or 'draining' (what /readyz says)."""
        return self._state

    @property
    def ready(self) -> bool:
        return self._state == "ready"

    def set_ready(self, ready: bool) -> None:
        """Flip /readyz: True once serving work, False while draining."""
        if ready:
            self._state = "ready"
        elif self._state == "ready":
            self._state = "draining"

    def drain_on_signals(self, signums: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> None:
        """Flip /readyz to `draining` the moment the daemon's own handler for one
        of `signums` runs (it is chained, not replaced), so probes see the drain
        while the daemon finishes its work.  Call from the main thread after the
        daemon installed its handlers; ignored or default dispositions are left
        alone (a signal the daemon ignores does not start a drain)."""
        for signum in signums:
            previous = signal.getsignal(signum)
            if callable(previous):
                signal.signal(signum, self._draining_then(previous))

    def _draining_then(self, previous):
        def handler(signum, frame):
            self.set_ready(False)
            previous(signum, frame)
        return handler

    def close(self) -> None:
        """Stop serving and give the hook back to whatever was installed before."""
        if self._previous_hook is not None and hook.current() is self.hook:
            hook.install(self._previous_hook)
        self._previous_hook = None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "MetricsServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        self._previous_hook = hook.install(self.hook)
        self._thread.start()


def serve_metrics(host: str, port: int, *, role: str, instance: str,
                  gpu: bool | None = None) -> MetricsServer:
    """Start this process's endpoint and install its hook; see the module docstring.

    `gpu`: add the NVML collector (default: only in the trainer, the process
    that owns the GPU).  Raises `MetricsServerError` if the port cannot be bound.
    """
    if role not in ROLES:
        raise MetricsServerError(f"serve_metrics: role must be one of {', '.join(ROLES)}, "
                                 f"got {role!r}")
    registry = CollectorRegistry()
    metrics_hook = PrometheusHook(registry, role)
    _add_build_info(registry, role)
    ProcessCollector(registry=registry)  # CPU seconds, RSS, open fds of this process
    if role == "trainer" if gpu is None else gpu:
        from monitoring.gpu import nvml_collector
        collector = nvml_collector()
        if collector is not None:
            registry.register(collector)
    server = MetricsServer(_bind(host, port, role), registry, metrics_hook,
                           role=role, instance=instance)
    server._start()
    log.info("%s %s serving /metrics on %s", role, instance, server.url)
    return server


def _add_build_info(registry: CollectorRegistry, role: str) -> None:
    entry = catalogue.BY_NAME["sagewalk_build_info"]
    info = Gauge(entry.name, entry.help, labelnames=entry.labels, registry=registry)
    info.labels(version=__version__, role=role).set(1)


def _bind(host: str, port: int, role: str) -> _Server:
    try:
        return _Server((host, port), _Handler)
    except OSError as err:
        raise MetricsServerError(
            f"cannot serve {role} metrics on {host}:{port}: {err.strerror or err}; "
            "choose a free port in [monitoring] (0 picks one) or stop the process "
            "holding it") from err


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = urlsplit(self.path).path
        owner: MetricsServer = self.server.metrics_server
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            try:
                body = encoder(owner.registry)
            except Exception as err:  # noqa: BLE001 - a collector bug must not kill scrapes
                log.exception("metrics: exposition failed")
                self._reply(500, f"metrics exposition failed: {err}\n".encode())
                return
            self._reply(200, body, content_type)
        elif path == "/healthz":
            self._reply(200, b"ok\n")
        elif path == "/readyz":
            self._reply(200 if owner.ready else 503, f"{owner.state}\n".encode())
        elif path == "/":
            body = (f"sagewalk {owner.role} {owner.instance}: "
                    "/metrics /healthz /readyz\n").encode()
            self._reply(200, body)
        else:
            self._reply(404, b"not found: try /metrics, /healthz or /readyz\n")

    def _reply(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        # Prometheus scrapes every few seconds; access logs would drown the daemon's own.
        log.debug("metrics %s: " + format, self.address_string(), *args)
