"""`sagewalk dashboard`: serve the live monitoring page."""

from __future__ import annotations

import argparse

from sagewalk.commands._common import add_config_args, load_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dashboard", help="Serve a live page charting throughput, queue depth, GPU/busy "
        "ratio, loss, validation, producers and rejected messages.")
    add_config_args(parser)
    parser.add_argument("--host", default=None,
                        help="Address to bind (default monitoring.host, loopback).")
    parser.add_argument("--port", type=int, default=None,
                        help="Port (default monitoring.dashboard_port; 0 picks a free one).")
    parser.add_argument("--prometheus", metavar="URL", default=None,
                        help="Read from this Prometheus server instead of the daemons "
                        "(default monitoring.prometheus_url).")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    import signal
    import threading

    from monitoring.dashboard import Monitor, serve_dashboard
    from monitoring.scrape import source_from_config

    config = load_config(args)
    cfg = config.monitoring
    monitor = Monitor(source_from_config(config, args.prometheus),
                      interval=cfg.dashboard_refresh_s, keep=cfg.dashboard_history)
    host = args.host if args.host is not None else cfg.host
    server = serve_dashboard(monitor, host, cfg.dashboard_port if args.port is None else args.port)
    # SIGTERM stops like Ctrl-C; shutdown() must run off the serving thread.
    signal.signal(signal.SIGTERM,
                  lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    monitor.start()
    bound_host, port = server.server_address[:2]
    reading = monitor.source.describe()
    if cfg.sd_file and not (args.prometheus or cfg.prometheus_url):
        reading += f" + producers listed in {cfg.sd_file}"  # re-read every refresh
    print(f"sagewalk dashboard on http://{bound_host}:{port}/ reading {reading}", flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass  # Ctrl-C is the normal way to stop an interactive dashboard
    finally:
        server.server_close()
        monitor.close()
    return 0
