"""A real Prometheus server scrapes the real pipeline (`sagewalk up` on a small
synthetic store: sampler daemon, two producer processes, trainer) through the
shipped deploy/prometheus.yml (static trainer/sampler targets, producers from
the sampler's file-SD file).  Through Prometheus's HTTP API: every expected
series from every process is present, throughput and queue depth move, a
killed producer is restarted and its values leave the totals, the alert rules
load and every Grafana panel query is valid and has data.  Finally every
process's /readyz goes ready -> draining -> gone when the pipeline is stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
import urllib.error
import urllib.request

import pytest

from monitoring import catalogue
from pipeline_run import PipelineRun
from prom_server import DEPLOY, Prometheus, free_port

pytestmark = [
    pytest.mark.prometheus,
    pytest.mark.skipif(shutil.which("prometheus") is None,
                       reason="needs the prometheus binary (apt-get install prometheus)"),
]

JOB = {"trainer": "sagewalk-trainer", "sampler": "sagewalk-sampler",
       "producer": "sagewalk-producers"}
# Series that exist only once something goes wrong or on a GPU.
EVENT_ONLY = {"sagewalk_rejected_messages_total"}


def _expected_names(role: str) -> set[str]:
    """Series names a healthy `role` process exposes (histograms as their _count)."""
    names = {"sagewalk_build_info"}
    for m in catalogue.METRICS:
        if role in m.roles and not m.collected and m.name not in EVENT_ONLY:
            names.add(f"{m.name}_count" if m.kind == catalogue.HISTOGRAM else m.name)
    return names


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    # One pipeline and one Prometheus for the module (start-up costs seconds);
    # the test that kills a producer runs last.  Prometheus starts first so it
    # sees the pipeline ramp up from nothing.
    tmp = tmp_path_factory.mktemp("prometheus")
    run = PipelineRun(tmp, trainer_port=free_port(), sampler_port=free_port())
    prom = Prometheus(tmp, trainer=run.trainer, sampler=run.sampler, sd_file=run.sd_file)
    try:
        prom.start()
        run.start()
        yield run, prom
    finally:
        run.stop()
        prom.stop()


def _up(prom: Prometheus) -> dict[str, float]:
    return {m["instance"]: v for m, v in prom.query('up{job=~"sagewalk-.*"}')}


def _processes(run: PipelineRun) -> dict[str, str]:
    """address -> role of every process that should be scraped now."""
    found = {run.trainer: "trainer", run.sampler: "sampler"}
    found.update({address: "producer" for address in run.producer_targets()})
    return found


def test_prometheus_sees_every_series_from_every_process(running):
    run, prom = running
    processes = _processes(run)
    assert len(processes) == 4
    prom.wait_for(lambda: {a: 1.0 for a in processes} == _up(prom), 30, "all four targets up")

    def missing() -> list[str]:
        found = {(m["instance"], m["__name__"]) for m, _ in
                 prom.query('count by (__name__, instance) ({__name__=~"sagewalk_.+"})')}
        return [f"{role} {address}: {name}" for address, role in processes.items()
                for name in sorted(_expected_names(role)) if (address, name) not in found]
    try:
        prom.wait_for(lambda: not missing(), 30, "every expected series present")
    except AssertionError as err:
        raise AssertionError(f"{err}; missing:\n" + "\n".join(missing())) from None

    for address, role in processes.items():  # each process under its own job
        info = prom.query(f'sagewalk_build_info{{instance="{address}"}}')
        assert info and info[0][0]["job"] == JOB[role], (address, info)
        # build info keeps its own role label (no clashing SD label renamed it)
        assert info[0][0].get("role") == role and "exported_role" not in info[0][0], info


def test_throughput_and_queue_depth_move(running):
    run, prom = running
    producers = set(run.producer_targets())
    prom.wait_for(lambda: {m["instance"] for m, _ in
                           prom.query("rate(sagewalk_producer_batches_total[5s]) > 0")}
                  == producers, 30, "every producer's throughput moving")
    prom.wait_for(lambda: prom.query("rate(sagewalk_batches_accepted_total[5s]) > 0"), 30,
                  "trainer accepting batches")
    # The prefetch queue fills from empty at start; in-flight counts rise and fall
    # with credits.  Either way the depth must have changed within the run.
    prom.wait_for(lambda: prom.query(
        "changes(sagewalk_prefetch_queue_batches[1m]) > 0 "
        "or changes(sagewalk_batches_in_flight[1m]) > 0"), 20, "queue depth changing")
    first = prom.query("sum(sagewalk_train_examples_total)")[0][1]
    prom.wait_for(lambda: prom.query("sum(sagewalk_train_examples_total)")[0][1] > first,
                  20, "trained examples growing")


def test_alert_rules_load_healthy(running):
    run, prom = running
    never = "0001-01-01"  # Prometheus's zero time: not evaluated yet
    prom.wait_for(lambda: all(not r["lastEvaluation"].startswith(never)
                              for g in prom.api("rules")["groups"] for r in g["rules"]),
                  20, "every rule evaluated")
    rules = {r["name"]: r for g in prom.api("rules")["groups"] for r in g["rules"]}
    assert set(rules) == {"SagewalkProducerDown", "SagewalkTrainerDown", "SagewalkTrainerStarved",
                          "SagewalkNoRecentCheckpoint", "SagewalkMessagesRejected",
                          "SagewalkProducersRestarting"}
    assert all(r["health"] == "ok" for r in rules.values()), rules
    # A healthy run: nothing fires (pending counts, `for:` windows are minutes long).
    firing = [a["labels"]["alertname"] for a in prom.api("alerts")["alerts"]
              if a["state"] == "firing"]
    assert firing == []


def test_every_grafana_panel_query_is_valid_and_has_data(running):
    run, prom = running
    prom.wait_for(lambda: prom.query("sagewalk_validation_hit_rate")
                  and prom.query("rate(sagewalk_batches_accepted_total[1m]) > 0"),
                  30, "validation run and rates available")
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    empty = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            result = prom.query(target["expr"])  # raises on invalid PromQL
            # No GPU here, and a healthy run rejects nothing.
            if not result and "gpu" not in target["expr"] and "rejected" not in target["expr"]:
                empty.append(f"{panel['title']}: {target['expr']}")
    assert not empty, "panels without data:\n" + "\n".join(empty)


def test_status_and_dashboard_read_the_same_picture_from_prometheus(running, capsys):
    from sagewalk.cli import main
    run, prom = running
    prom.wait_for(lambda: prom.query("sagewalk_train_loss"), 30, "a training step")
    code = main(["status", "--json", "--interval", "2", "--prometheus", prom.url])
    state = json.loads(capsys.readouterr().out)
    assert code == 0 and state["source"] == f"prometheus: {prom.url}"
    assert sorted((t["role"], t["up"]) for t in state["targets"]) == [
        ("producer", True), ("producer", True), ("sampler", True), ("trainer", True)]
    assert state["charts"]["loss"]["loss"] is not None
    assert state["charts"]["producers"]["running (sampler)"] == 2
    assert state["tiles"]["epoch"] >= 1


def test_a_killed_producer_is_restarted_and_leaves_the_totals(running):
    run, prom = running
    before = set(run.producer_targets())
    pids = run.producer_pids()
    assert len(pids) == 2, pids
    os.kill(pids[0], signal.SIGKILL)
    prom.wait_for(lambda: prom.query("sagewalk_producer_restarts_total == 1"), 30,
                  "the sampler counting the restart")
    prom.wait_for(lambda: len(set(run.producer_targets()) - before) == 1, 30,
                  "the supervisor listing the restarted producer")
    now = set(run.producer_targets())
    (gone,) = before - now

    def instances(promql: str) -> set[str]:
        return {m["instance"] for m, _ in prom.query(promql)}
    prom.wait_for(lambda: gone not in _up(prom) and set(_up(prom)) >= now, 30,
                  "file SD replacing the dead producer's target")
    # Staleness: the dead process's last values are gone from every total.
    prom.wait_for(lambda: instances("sagewalk_producer_batches_total") == now, 20,
                  "only live producers in the totals")
    prom.wait_for(lambda: instances("rate(sagewalk_producer_batches_total[5s]) > 0") == now, 30,
                  "the new producer producing")


def _readyz(address: str) -> str:
    try:
        with urllib.request.urlopen(f"http://{address}/readyz", timeout=0.5) as reply:
            return reply.read().decode().strip()
    except urllib.error.HTTPError as err:
        return err.read().decode().strip()
    except OSError:
        return "gone"


def test_every_process_reports_draining_between_sigterm_and_exit(running):
    # Last in the module: it stops the pipeline.  /readyz of each process is
    # polled while `sagewalk up` forwards SIGTERM to the daemons.
    run, prom = running
    addresses = [run.trainer, run.sampler, *run.producer_targets()]
    seen: dict[str, list[str]] = {a: [] for a in addresses}

    def watch(address: str) -> None:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            state = _readyz(address)
            if not seen[address] or seen[address][-1] != state:
                seen[address].append(state)
            if state == "gone":
                return
            time.sleep(0.01)
    watchers = [threading.Thread(target=watch, args=(a,)) for a in addresses]
    for w in watchers:
        w.start()
    time.sleep(0.3)
    run.proc.send_signal(signal.SIGTERM)
    for w in watchers:
        w.join()
    assert run.proc.wait(timeout=30) == 0
    # The daemons' drains (checkpoint, producers' shutdown) last long enough to
    # be seen every time.  A producer with no batch in flight drains in a few
    # milliseconds, which a loaded machine's 10 ms polling can miss: it may go
    # straight from ready to gone, never back to ready.
    for address in (run.trainer, run.sampler):
        assert seen[address] == ["ready", "draining", "gone"], seen
    assert all(seen[a] in (["ready", "draining", "gone"], ["ready", "gone"])
               for a in addresses), seen
