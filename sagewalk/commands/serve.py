"""`sagewalk serve`: GET /related?id=...&k=... over HTTP (loopback by default)."""

from __future__ import annotations

import argparse

from sagewalk.commands._common import add_config_args, load_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help="Answer GET /related?id=...&k=... and /healthz with JSON.")
    add_config_args(parser)
    parser.add_argument("--index", metavar="DIR", default="index", help="Index directory.")
    parser.add_argument("--host", default=None, help="Bind address (default serving.host, "
                        "loopback).")
    parser.add_argument("--port", type=int, default=None, help="Port (default serving.port).")
    parser.add_argument("--run", dest="run_dir", metavar="RUN_DIR", default=None,
                        help="MultiSage run directory: enables &context=CONTEXT_ID.")
    parser.add_argument("--embed-dir", metavar="DIR", default=None,
                        help="`sagewalk embed` job directory (for &context=).")
    parser.add_argument("--context-type", default=None, help="Node type of context ids.")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from serving.http import make_server
    from serving.index import RelatedItems
    config = load_config(args)
    related = RelatedItems(Path(args.index))
    contextual = None
    if args.run_dir is not None:
        from serving.contextual import open_ranker
        contextual = open_ranker(config, related, args.run_dir, args.embed_dir, args.context_type)
    host = args.host or config.serving.host
    port = config.serving.port if args.port is None else args.port
    server = make_server(related, host, port, default_k=config.serving.top_k,
                         contextual=contextual)
    bound = server.server_address
    print(f"serving {len(related.ids):,} items on http://{bound[0]}:{bound[1]}/related?id=...",
          flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0
