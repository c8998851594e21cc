"""The catalogue follows Prometheus conventions, and every hook call in the code
base names a catalogued metric with the right kind and labels (catches typos
across the team before they silently drop metrics)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from monitoring import catalogue

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("graphstore", "sampler", "worker", "gpu_consumer", "monitoring", "serving",
            "sagewalk", "benchmarks")
CALL_KINDS = {"inc": {"counter", "gauge"}, "set": {"gauge"}, "observe": {"histogram"}}

# The table in /tmp/team/CONTRACTS.md, which every stage codes against.
CONTRACT = {
    "sagewalk_build_info": "gauge", "sagewalk_producer_batches_total": "counter",
    "sagewalk_producer_examples_total": "counter", "sagewalk_sampling_seconds": "histogram",
    "sagewalk_wire_bytes_total": "counter", "sagewalk_batches_in_flight": "gauge",
    "sagewalk_prefetch_queue_batches": "gauge", "sagewalk_tickets_issued_total": "counter",
    "sagewalk_batches_accepted_total": "counter", "sagewalk_duplicate_batches_total": "counter",
    "sagewalk_gap_batches_total": "counter", "sagewalk_rejected_messages_total": "counter",
    "sagewalk_producers_alive": "gauge",
    "sagewalk_producer_last_heartbeat_timestamp_seconds": "gauge",
    "sagewalk_producer_restarts_total": "counter", "sagewalk_trainer_busy_ratio": "gauge",
    "sagewalk_trainer_data_wait_seconds_total": "counter",
    "sagewalk_train_step_seconds": "histogram", "sagewalk_train_examples_total": "counter",
    "sagewalk_train_loss": "gauge", "sagewalk_learning_rate": "gauge", "sagewalk_epoch": "gauge",
    "sagewalk_epoch_progress_ratio": "gauge", "sagewalk_curriculum_hard_negatives": "gauge",
    "sagewalk_validation_hit_rate": "gauge", "sagewalk_last_checkpoint_timestamp_seconds": "gauge",
    "sagewalk_gpu_utilization_ratio": "gauge", "sagewalk_gpu_memory_used_bytes": "gauge",
}


def test_catalogue_holds_every_contract_metric_with_its_type():
    for name, kind in CONTRACT.items():
        entry = catalogue.get(name)
        assert entry is not None, f"{name} missing from monitoring/catalogue.py"
        assert entry.kind == kind, f"{name}: {entry.kind}, contract says {kind}"


def test_names_follow_prometheus_conventions():
    assert len(catalogue.BY_NAME) == len(catalogue.METRICS), "duplicate metric name"
    for m in catalogue.METRICS:
        assert re.fullmatch(r"sagewalk_[a-z0-9_]+", m.name), m.name
        assert m.kind in ("counter", "gauge", "histogram"), m.name
        assert (m.kind == "counter") == m.name.endswith("_total"), \
            f"{m.name}: counters and only counters end in _total"
        if m.kind == "histogram":
            assert re.search(r"_(seconds|bytes)$", m.name), f"{m.name}: histogram needs a unit"
            assert list(m.buckets) == sorted(set(m.buckets)) and m.buckets, m.name
        assert not re.search(r"_(ms|milliseconds|kb|mb|percent)(_|$)", m.name), \
            f"{m.name}: use base units (seconds, bytes, ratio)"
        assert m.help.strip() and m.help[0].isupper(), f"{m.name}: help text"
        assert not {"le", "quantile", "job", "instance"} & set(m.labels), m.name
        assert m.roles, f"{m.name}: say which process reports it"


def _hook_calls(path: Path):
    """(line, call, metric name, label names or None if **kwargs) for each
    hook.inc/set/observe call whose first argument is a string literal."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in CALL_KINDS and _is_hook(node.func.value) and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)):
            continue
        keywords = [k.arg for k in node.keywords]
        labels = None if None in keywords else set(keywords) - {"value"}
        yield node.lineno, node.func.attr, node.args[0].value, labels


def _is_hook(node: ast.AST) -> bool:
    """`hook` or `monitoring.hook` (the ways stages import the hook)."""
    return ((isinstance(node, ast.Name) and node.id == "hook")
            or (isinstance(node, ast.Attribute) and node.attr == "hook"))


def _source_files():
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def test_every_hook_call_in_the_code_base_names_a_catalogued_metric():
    problems = []
    for path in _source_files():
        for line, call, name, labels in _hook_calls(path):
            where = f"{path.relative_to(ROOT)}:{line}: hook.{call}({name!r})"
            entry = catalogue.get(name)
            if entry is None:
                problems.append(f"{where}: not in monitoring/catalogue.py")
            elif entry.collected:
                problems.append(f"{where}: collected by monitoring itself, not reported")
            elif entry.kind not in CALL_KINDS[call]:
                problems.append(f"{where}: {entry.kind} metrics take another call")
            elif labels is not None and labels != set(entry.labels):
                problems.append(f"{where}: labels {sorted(labels)}, catalogue says "
                                f"{list(entry.labels)}")
    assert not problems, "\n".join(problems)


def test_the_scan_catches_a_typo(tmp_path):
    bad = tmp_path / "stage.py"
    bad.write_text("from monitoring import hook\n"
                   "hook.inc('sagewalk_producer_batchs_total', producer='1')\n"
                   "hook.set('sagewalk_train_loss', 1.0, **extra)\n"
                   "monitoring.hook.observe('sagewalk_sampling_seconds', 0.1)\n"
                   "other.inc('sagewalk_not_a_hook_total')\n")
    calls = list(_hook_calls(bad))
    assert calls == [(2, "inc", "sagewalk_producer_batchs_total", {"producer"}),
                     (3, "set", "sagewalk_train_loss", None),
                     (4, "observe", "sagewalk_sampling_seconds", set())]
    assert catalogue.get(calls[0][2]) is None


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_get_returns_the_entry(name):
    assert catalogue.get(name).name == name


def test_docs_list_every_metric():
    doc = (ROOT / "docs" / "monitoring.md").read_text()
    missing = [m.name for m in catalogue.METRICS if f"| `{m.name}` |" not in doc]
    assert not missing, f"docs/monitoring.md metric table lacks {missing}"
