"""`sagewalk sampler`: the daemon that keeps N producer processes feeding the trainer."""

from __future__ import annotations

import argparse

from sagewalk.commands._common import add_config_args, load_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sampler", help="Run the producer supervisor (SIGHUP re-reads worker.producers; "
        "SIGTERM drains and exits 0).")
    add_config_args(parser)
    parser.add_argument("--connect", metavar="ENDPOINT", default=None,
                        help="Trainer endpoint to connect to, e.g. tcp://trainer-host:5555 "
                        "for producers on another host (default: worker.trainer_endpoint).")
    parser.add_argument("--producers", type=int, default=None,
                        help="Start with this many producers instead of worker.producers.")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from sagewalk.config import override
    from sagewalk.daemons.sampler import run

    config = load_config(args)
    overrides = list(args.overrides)
    if args.producers is not None:
        overrides.append(f"worker.producers={args.producers}")
        config = override(config, overrides[-1])
    return run(config, config_path=args.config, overrides=overrides, connect=args.connect)
