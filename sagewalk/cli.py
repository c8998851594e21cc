"""The `sagewalk` command line.

Each verb lives in a module under `sagewalk/commands/` that defines
`register(subparsers)`; modules are discovered, so adding a verb touches one
file.  Command modules import nothing heavy at module level: torch, numba and
zmq are imported inside the functions that run a verb.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from sagewalk import __version__
from sagewalk.errors import SagewalkError

log = logging.getLogger("sagewalk")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sagewalk",
        description="PinSage-style graph embeddings on graphs larger than memory.")
    parser.add_argument("--version", action="version", version=f"sagewalk {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="More log output (-vv for debug).")
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB")
    import sagewalk.commands as commands
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"sagewalk.commands.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose + 1, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    if getattr(args, "run", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except SagewalkError as err:
        print(f"sagewalk {args.verb}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # Output piped into `head` and the like: stop quietly, as cat does.
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"sagewalk {args.verb}: interrupted", file=sys.stderr)
        return 130
