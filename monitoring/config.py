"""[monitoring]: metrics endpoints and the dashboard."""

from __future__ import annotations

from dataclasses import dataclass

from common.schema import port, positive, setting


@dataclass(frozen=True, kw_only=True)
class MonitoringConfig:
    host: str = setting("127.0.0.1", "Address metrics endpoints and the dashboard bind.")
    trainer_port: int = setting(9750, "Trainer's /metrics port (0 disables).", check=port)
    sampler_port: int = setting(9740, "Sampler supervisor's /metrics port (0 disables).",
                                check=port)
    producer_base_port: int = setting(9760, "Producer i serves /metrics on base+i (0 picks "
                                      "free ports).", check=port)
    dashboard_port: int = setting(9700, "Port of `sagewalk dashboard`.", check=port)
    prometheus_url: str = setting("", "Prometheus server the dashboard reads from; empty "
                                  "reads the daemons directly.")
    sd_file: str = setting("", "Prometheus file-based service-discovery file the sampler "
                           "writes its producers' endpoints to; empty disables.")
    dashboard_refresh_s: float = setting(2.0, "Seconds between dashboard refreshes (each "
                                         "scrapes every daemon once).", check=positive)
    dashboard_history: int = setting(300, "Refreshes the dashboard keeps and charts.",
                                     check=positive)
