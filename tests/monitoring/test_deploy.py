"""deploy/: the Prometheus config, alert rules and Grafana dashboard users get.

promtool validates the config and rules and runs the alert unit tests in
deploy/alerts_test.yml (each alert fires on its condition, stays quiet
otherwise); every metric any of them names is in the catalogue.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from monitoring import catalogue

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMTOOL = shutil.which("promtool")


def _promtool(*args: str) -> None:
    run = subprocess.run([PROMTOOL, *args], cwd=DEPLOY, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.prometheus
@pytest.mark.skipif(PROMTOOL is None, reason="needs promtool (apt-get install prometheus)")
@pytest.mark.parametrize("args", [("check", "config", "prometheus.yml"),
                                  ("check", "rules", "alerts.yml"),
                                  ("test", "rules", "alerts_test.yml")])
def test_promtool_accepts(args):
    _promtool(*args)


def _metric_names(text: str) -> set[str]:
    names = set(re.findall(r"\bsagewalk_[a-z0-9_]+", text))
    return {re.sub(r"_(bucket|count|sum)$", "", n) if n not in catalogue.BY_NAME else n
            for n in names}


def test_deploy_files_name_only_catalogued_metrics():
    for name in ("alerts.yml", "grafana-dashboard.json"):
        unknown = _metric_names((DEPLOY / name).read_text()) - set(catalogue.BY_NAME)
        assert not unknown, f"deploy/{name} names metrics not in the catalogue: {unknown}"


def test_grafana_dashboard_covers_the_issue_panels():
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus"
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in ("sagewalk_gpu_utilization_ratio", "sagewalk_trainer_busy_ratio",
                   "sagewalk_batches_in_flight", "sagewalk_prefetch_queue_batches",
                   "sagewalk_producer_batches_total", "sagewalk_train_loss",
                   "sagewalk_validation_hit_rate", "sagewalk_producers_alive",
                   "sagewalk_rejected_messages_total", "sagewalk_last_checkpoint_timestamp_seconds"):
        assert metric in exprs, metric
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert all(len({t["refId"] for t in p["targets"]}) == len(p["targets"])
               for p in dashboard["panels"])
