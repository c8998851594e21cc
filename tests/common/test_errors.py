"""Every stage's errors are the project's base error, so the CLI prints their
message and exits 2 instead of a traceback."""

from __future__ import annotations

import importlib
import inspect

import pytest

import common.errors
import sagewalk.errors
from sagewalk import cli

STAGE_ERRORS = [
    ("graphstore.errors", "StoreError"), ("graphstore.errors", "IngestError"),
    ("sampler.pairs", "PairFileError"), ("sampler.graph", "CorruptGraphError"),
    ("worker.transport", "TransportError"), ("worker.control", "ControlError"),
    ("worker.supervisor", "SupervisorError"), ("worker.supervisor", "StoreDamagedError"),
    ("gpu_consumer.layers", "ModelError"), ("gpu_consumer.ledger", "CursorError"),
    ("gpu_consumer.checkpoint", "CorruptCheckpoint"),
    ("gpu_consumer.checkpoint", "NoIntactCheckpoint"),
    ("serving.embed_job", "EmbedError"), ("serving.evaluate", "EvaluationError"),
    ("serving.holdout", "HoldoutError"), ("serving.movielens", "DatasetError"),
    ("monitoring.discovery", "DiscoveryError"), ("monitoring.exporter", "MetricsServerError"),
    ("monitoring.dashboard", "DashboardError"), ("monitoring.scrape", "SourceError"),
    ("sagewalk.demo", "DemoError"),
]


def test_the_command_line_package_re_exports_the_ground_floor_errors():
    assert sagewalk.errors.SagewalkError is common.errors.SagewalkError
    assert sagewalk.errors.ConfigError is common.errors.ConfigError


@pytest.mark.parametrize("module, name", STAGE_ERRORS)
def test_stage_errors_are_sagewalk_errors(module, name):
    error = getattr(importlib.import_module(module), name)
    assert inspect.isclass(error) and issubclass(error, common.errors.SagewalkError)


def test_a_stage_error_is_a_clean_message_and_exit_2(monkeypatch, capsys):
    from gpu_consumer.ledger import CursorError

    def fail(args):
        raise CursorError("the cursor says epoch 3 of 2")

    monkeypatch.setattr(cli, "build_parser", _parser_running(fail))
    assert cli.main(["boom"]) == 2
    err = capsys.readouterr().err
    assert err == "sagewalk boom: error: the cursor says epoch 3 of 2\n"


def _parser_running(run):
    import argparse

    def build():
        parser = argparse.ArgumentParser(prog="sagewalk")
        parser.add_argument("-v", "--verbose", action="count", default=0)
        sub = parser.add_subparsers(dest="verb")
        sub.add_parser("boom").set_defaults(run=run)
        return parser
    return build
