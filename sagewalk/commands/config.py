"""`sagewalk config show|describe`: the resolved config and every setting's help."""

from __future__ import annotations

import argparse

from sagewalk.commands._common import add_config_args, load_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("config", help="Show the resolved config or describe settings.")
    verbs = parser.add_subparsers(dest="config_verb", metavar="ACTION", required=True)
    show = verbs.add_parser("show", help="Print the resolved config as TOML.")
    add_config_args(show)
    show.set_defaults(run=_show)
    describe = verbs.add_parser("describe", help="List every setting with default and help.")
    describe.set_defaults(run=_describe)


def _show(args: argparse.Namespace) -> int:
    from sagewalk.config import to_toml
    print(to_toml(load_config(args)), end="")
    return 0


def _describe(args: argparse.Namespace) -> int:
    from sagewalk.config import Config, describe
    for path, default, help_text in describe(Config):
        if default is None and "." not in path:
            print(f"\n[{path}]  {help_text}")
        else:
            print(f"  {path} = {default!r}\n      {help_text}")
    return 0
