"""`sagewalk keys generate DIR`: CURVE keypairs for tcp:// producers and trainer."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("keys", help="Manage CURVE keys for tcp:// transport.")
    verbs = parser.add_subparsers(dest="keys_verb", metavar="ACTION", required=True)
    generate = verbs.add_parser(
        "generate", help="Write trainer and producer keypairs; point worker.curve_keys_dir "
        "at the directory on every host.")
    generate.add_argument("directory", help="Where to write the keys (created if missing).")
    generate.set_defaults(run=_generate)


def _generate(args: argparse.Namespace) -> int:
    from worker.transport import generate_keys

    for path in generate_keys(args.directory):
        print(path)
    print(f"set worker.curve_keys_dir = {args.directory!r} for the trainer and the producers")
    return 0
