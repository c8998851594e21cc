"""`sagewalk up`: the sampler and the trainer daemons in one command.

Both run as child processes in their own process group; SIGTERM/SIGINT are
forwarded (each daemon drains or checkpoints on its own), and `up` exits with
the trainer's status once training completes, after draining the sampler.
"""

from __future__ import annotations

import argparse
import logging

from sagewalk.commands._common import add_config_args

log = logging.getLogger(__name__)
DRAIN_S = 30.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "up", help="Run the sampler and trainer daemons together until training completes.")
    add_config_args(parser)
    parser.add_argument("--fresh", action="store_true",
                        help="Passed to the trainer: move its checkpoints aside and start "
                        "from step 0 (see `sagewalk trainer --help`).")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    import signal
    import subprocess
    import sys
    import time

    from sagewalk.commands._common import load_config

    load_config(args)  # fail here, once, on a bad config rather than in both children
    common = ["--config", args.config] if args.config else []
    for item in args.overrides:
        common += ["--set", item]
    verbose = ["-" + "v" * args.verbose] if args.verbose else []

    def start(verb: str, *extra: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "sagewalk", *verbose, verb, *common,
                                 *extra], start_new_session=True)

    trainer = start("trainer", *(["--fresh"] if args.fresh else []))
    sampler = start("sampler")
    stopping = []

    def forward(signum, _frame):
        stopping.append(signum)
        for child in (trainer, sampler):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while trainer.poll() is None:
        if sampler.poll() is not None and not stopping:
            log.error("sampler daemon exited with %s; stopping the trainer", sampler.returncode)
            trainer.send_signal(signal.SIGTERM)
            _wait(trainer)
            return sampler.returncode or 1
        time.sleep(0.2)
    if sampler.poll() is None:
        sampler.send_signal(signal.SIGTERM)
    _wait(sampler)
    if sampler.returncode:
        log.warning("sampler daemon exited with %s", sampler.returncode)
    return trainer.returncode


def _wait(child) -> None:
    import subprocess

    try:
        child.wait(DRAIN_S)
    except subprocess.TimeoutExpired:
        log.error("%s did not stop within %.0f s; killing it", child.args[3:4], DRAIN_S)
        child.kill()
        child.wait()
