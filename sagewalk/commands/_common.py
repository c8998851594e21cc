"""Arguments most verbs share."""

from __future__ import annotations

import argparse


def add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", metavar="FILE", default=None,
                        help="TOML config file (defaults apply without one).")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE",
                        help="Override one setting, e.g. --set sampler.num_walks=20 "
                        "(repeatable).")


def load_config(args: argparse.Namespace):
    from sagewalk.config import load
    return load(args.config, args.overrides)
