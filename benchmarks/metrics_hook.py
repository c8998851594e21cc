"""Cost of reporting a metric, and of a scrape, on the hot paths.

    python benchmarks/metrics_hook.py --quick     # about 5 s
    python benchmarks/metrics_hook.py

Producers call the hook a few times per batch and the trainer a dozen times
per step, so a hook call must cost microseconds at most.  Measures ns per call
with the default no-op hook and with the Prometheus hook (unlabelled counter,
labelled counter, histogram), and the time to render /metrics over HTTP with
every catalogue metric reported under 8 label values.  Prints ONE JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitoring import catalogue, hook  # noqa: E402
from monitoring.exporter import serve_metrics  # noqa: E402


def per_call_ns(call, n: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(n):
        call()
    return (time.perf_counter_ns() - start) / n


def hook_costs(n: int) -> dict[str, float]:
    costs = {"null_inc_ns": per_call_ns(lambda: hook.inc("sagewalk_tickets_issued_total"), n)}
    server = serve_metrics("127.0.0.1", 0, role="trainer", instance="bench", gpu=False)
    try:
        costs["inc_ns"] = per_call_ns(lambda: hook.inc("sagewalk_tickets_issued_total"), n)
        costs["inc_labelled_ns"] = per_call_ns(
            lambda: hook.inc("sagewalk_producer_batches_total", producer="3"), n)
        costs["observe_ns"] = per_call_ns(
            lambda: hook.observe("sagewalk_train_step_seconds", 0.02), n)
        costs["set_ns"] = per_call_ns(lambda: hook.set("sagewalk_train_loss", 0.5), n)
    finally:
        server.close()
    return costs


def scrape_cost(scrapes: int) -> dict[str, float]:
    server = serve_metrics("127.0.0.1", 0, role="trainer", instance="bench", gpu=False)
    try:
        for metric in catalogue.METRICS:
            if metric.collected:
                continue
            call = {"counter": hook.inc, "gauge": hook.set, "histogram": hook.observe}[metric.kind]
            for value in range(8):
                call(metric.name, 0.01 * value, **{label: str(value) for label in metric.labels})
        url = f"{server.url}/metrics"
        size = len(urllib.request.urlopen(url).read())
        start = time.perf_counter()
        for _ in range(scrapes):
            urllib.request.urlopen(url).read()
        return {"scrape_ms": (time.perf_counter() - start) * 1000 / scrapes, "scrape_bytes": size}
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Fewer repetitions (about 5 s).")
    args = parser.parse_args()
    calls, scrapes = (100_000, 50) if args.quick else (1_000_000, 500)
    result = {"benchmark": "metrics_hook", "calls": calls, **hook_costs(calls),
              **scrape_cost(scrapes), "loadavg_1m": os.getloadavg()[0]}
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}))


if __name__ == "__main__":
    main()
