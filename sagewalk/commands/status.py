"""`sagewalk status`: the dashboard's picture, printed once in the terminal."""

from __future__ import annotations

import argparse

from sagewalk.commands._common import add_config_args, load_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status", help="Print throughput, queue depth, GPU/busy ratio, loss, producers and "
        "rejections of the running daemons.")
    add_config_args(parser)
    parser.add_argument("--interval", type=float, default=2.0, metavar="SECONDS",
                        help="Seconds between the two scrapes rates are computed from.")
    parser.add_argument("--prometheus", metavar="URL", default=None,
                        help="Read from this Prometheus server instead of the daemons.")
    parser.add_argument("--json", action="store_true", help="Print the picture as JSON.")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    import json
    import sys
    import time

    from monitoring.picture import picture
    from monitoring.scrape import SourceError, source_from_config
    from monitoring.terminal import render
    from sagewalk.errors import SagewalkError

    config = load_config(args)
    source = source_from_config(config, args.prometheus)
    try:
        first = source.snapshot()
        time.sleep(max(0.0, args.interval))
        second = source.snapshot()
    except SourceError as err:
        raise SagewalkError(str(err)) from err
    finally:
        source.close()
    current = picture(first, second, source.describe())
    print(json.dumps(current.to_dict(), indent=2) if args.json else render(current))
    if not any(t.up for t in current.targets):
        print("sagewalk status: no sagewalk process answered; start them with `sagewalk up` "
              "(or check the [monitoring] ports)", file=sys.stderr)
        return 1
    return 0
