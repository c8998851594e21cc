"""The sampler daemon: a producer supervisor with a control socket and /metrics."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def run(config, *, config_path: str | None, overrides=(), connect: str | None = None,
        builder: str = "worker.producer:default_builder") -> int:
    """Run until SIGTERM/SIGINT (exit 0 after draining), until the restart
    budget is spent (exit 1) or a producer dies on a damaged store (exit 2)."""
    from worker.control import ControlServer
    from worker.supervisor import Supervisor

    if builder == "worker.producer:default_builder":
        # Fail once, here, with the store's own message, instead of N producers
        # crashing on it until the restart budget runs out.
        from graphstore import open_store
        open_store(config.graphstore.path).check_structure()

    from sagewalk.config import load

    supervisor = Supervisor(config, reload_config=lambda: load(config_path, list(overrides)),
                            endpoint=connect, builder=builder)
    supervisor.install_signals()
    server = None
    mon = config.monitoring
    if mon.sampler_port:
        from monitoring.exporter import serve_metrics
        server = serve_metrics(mon.host, mon.sampler_port, role="sampler", instance="sampler")
        server.drain_on_signals()  # /readyz: "draining" from the signal on
    control = ControlServer(config.worker.control_endpoint)
    log.info("sampler: %d producers -> %s (control %s)", supervisor.target,
             connect or config.worker.trainer_endpoint, config.worker.control_endpoint)
    if server is not None:
        server.set_ready(True)
    try:
        return supervisor.run(control)
    finally:
        if server is not None:
            server.set_ready(False)
        control.close()
        if server is not None:
            server.close()
