"""`sagewalk scale --producers N`: change a running sampler daemon's producer count."""

from __future__ import annotations

import argparse

from sagewalk.commands._common import add_config_args, load_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "scale", help="Set the number of producers of a running `sagewalk sampler`, live.")
    add_config_args(parser)
    parser.add_argument("--producers", type=int, default=None, metavar="N",
                        help="New producer count (omit to print the current status).")
    parser.add_argument("--endpoint", default=None,
                        help="Control socket (default: worker.control_endpoint).")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from worker.control import ControlError, request

    endpoint = args.endpoint or load_config(args).worker.control_endpoint
    if args.producers is not None and args.producers < 0:
        raise ControlError(f"--producers must be >= 0, got {args.producers}")
    message = ({"cmd": "status"} if args.producers is None
               else {"cmd": "scale", "producers": args.producers})
    reply = request(endpoint, message)
    print(f"producers: {reply['producers']} wanted, {reply['alive']} alive, "
          f"{reply['restarts']} restarts")
    return 0
