"""A real Prometheus server scrapes real sagewalk processes through the shipped
deploy/prometheus.yml (static trainer/sampler targets, file-SD producers) and,
through its HTTP API, sees every expected series from every process, values
that move, a killed producer's values gone from totals, the alert rules loaded
and the Grafana panels' queries valid.
"""

from __future__ import annotations

import json
import shutil

import pytest

from metrics_processes import Simulation
from monitoring import catalogue
from monitoring.discovery import write_sd_file
from prom_server import DEPLOY, Prometheus

pytestmark = [
    pytest.mark.prometheus,
    pytest.mark.skipif(shutil.which("prometheus") is None,
                       reason="needs the prometheus binary (apt-get install prometheus)"),
]

JOB = {"trainer": "sagewalk-trainer", "sampler": "sagewalk-sampler",
       "producer": "sagewalk-producers"}


def _expected_names(role: str) -> set[str]:
    """Series names a `role` process must expose (histograms as their _count)."""
    names = {"sagewalk_build_info"}
    for m in catalogue.METRICS:
        if role in m.roles and not m.collected:
            names.add(f"{m.name}_count" if m.kind == catalogue.HISTOGRAM else m.name)
    return names


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    # One Prometheus for the module (start-up costs seconds); the test that kills
    # a producer runs last.
    tmp_path = tmp_path_factory.mktemp("prometheus")
    sim = Simulation(tmp_path, producers=2)
    sd_file = tmp_path / "producers.json"
    try:
        ports = sim.start_all()
        write_sd_file(sd_file, [("127.0.0.1", ports[f"producer-{i}"]) for i in range(2)])
        prom = Prometheus(tmp_path, trainer=f"127.0.0.1:{ports['trainer']}",
                          sampler=f"127.0.0.1:{ports['sampler']}", sd_file=sd_file).start()
        try:
            yield sim, ports, prom, sd_file
        finally:
            prom.stop()
    finally:
        sim.stop()


def _up(prom: Prometheus) -> dict[str, float]:
    return {m["instance"]: v for m, v in prom.query('up{job=~"sagewalk-.*"}')}


def test_prometheus_sees_every_series_from_every_process(pipeline):
    sim, ports, prom, sd_file = pipeline
    addresses = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
    prom.wait_for(lambda: set(_up(prom)) == set(addresses.values())
                  and all(v == 1 for v in _up(prom).values()), 30, "targets up")

    def missing() -> list[str]:
        found = {(m["instance"], m["__name__"]) for m, _ in
                 prom.query('count by (__name__, instance) ({__name__=~"sagewalk_.+"})')}
        return [f"{name}: {series}" for name, address in addresses.items()
                for series in sorted(_expected_names(name.split("-")[0]))
                if (address, series) not in found]
    prom.wait_for(lambda: not missing(), 10, "all series present")

    for name, address in addresses.items():  # the right job label on each process
        role = name.split("-")[0]
        info = prom.query(f'sagewalk_build_info{{instance="{address}"}}')
        assert info and info[0][0]["job"] == JOB[role] and info[0][0]["role"] == role


def test_alert_rules_load_and_rejections_fire(pipeline):
    sim, ports, prom, sd_file = pipeline
    groups = prom.api("rules")["groups"]
    rules = {r["name"]: r for g in groups for r in g["rules"]}
    assert set(rules) == {"SagewalkProducerDown", "SagewalkTrainerDown", "SagewalkTrainerStarved",
                          "SagewalkNoRecentCheckpoint", "SagewalkMessagesRejected",
                          "SagewalkProducersRestarting"}
    assert all(r["health"] == "ok" for r in rules.values()), rules
    # The simulated trainer rejects a message with reason "digest" every half second.
    firing = prom.wait_for(
        lambda: [a for a in prom.api("alerts")["alerts"]
                 if a["labels"]["alertname"] == "SagewalkMessagesRejected"
                 and a["state"] == "firing"], 30, "rejection alert firing")
    assert firing[0]["labels"]["reason"] == "digest"


def test_every_grafana_panel_query_is_valid_and_returns_data(pipeline):
    sim, ports, prom, sd_file = pipeline
    for counter in ("sagewalk_producer_batches_total", "sagewalk_batches_accepted_total",
                    "sagewalk_producer_restarts_total"):
        prom.wait_for(lambda: prom.query(f"sum(rate({counter}[1m])) >= 0"), 30,
                      f"two samples of {counter}")
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    empty = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            result = prom.query(target["expr"])  # raises on invalid PromQL
            if not result and "gpu" not in target["expr"]:  # no GPU on this machine
                empty.append(f"{panel['title']}: {target['expr']}")
    assert not empty, "panels without data:\n" + "\n".join(empty)


def test_values_move_and_a_killed_producer_leaves_the_totals(pipeline):
    sim, ports, prom, sd_file = pipeline
    prom.wait_for(lambda: len(prom.query("rate(sagewalk_producer_batches_total[3s]) > 0")) == 2,
                  20, "both producers' throughput moving")
    prom.wait_for(lambda: prom.query("changes(sagewalk_prefetch_queue_batches[3s]) > 0"),
                  10, "prefetch queue depth changing")
    prom.wait_for(lambda: prom.query('changes(sagewalk_batches_in_flight{producer="1"}[3s]) > 0'),
                  10, "batches in flight changing")
    first = prom.query("sum(sagewalk_train_examples_total)")[0][1]
    prom.wait_for(lambda: prom.query("sum(sagewalk_train_examples_total)")[0][1] > first,
                  10, "trained examples growing")

    killed = f"127.0.0.1:{ports['producer-1']}"
    sim.kill("producer-1")
    prom.wait_for(lambda: _up(prom).get(killed) == 0, 10, "killed producer marked down")
    # Staleness: the dead process's last values no longer count in any total.
    series = prom.query("sagewalk_producer_batches_total")
    assert {m["instance"] for m, _ in series} == {f"127.0.0.1:{ports['producer-0']}"}

    write_sd_file(sd_file, [("127.0.0.1", ports["producer-0"])])  # the supervisor's update
    prom.wait_for(lambda: killed not in _up(prom), 15, "file SD dropping the dead producer")
