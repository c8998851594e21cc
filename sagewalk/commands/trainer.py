"""`sagewalk trainer`: the daemon that trains the model on the producers' batches."""

from __future__ import annotations

import argparse
import json

from sagewalk.commands._common import add_config_args, load_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "trainer", help="Train on batches from `sagewalk sampler` (resumes from the newest "
        "checkpoint in trainer.run_dir; SIGTERM checkpoints and exits 0).",
        description="Bind worker.trainer_endpoint, hand tickets to producers, train, "
        "checkpoint, and write run_dir/run_summary.json and run_dir/model.pt at the end. "
        "Several GPUs: torchrun --nproc-per-node N -m sagewalk trainer --config F.")
    add_config_args(parser)
    parser.add_argument("--run-dir", default=None, metavar="DIR",
                        help="Shorthand for --set trainer.run_dir=DIR.")
    parser.add_argument("--fresh", action="store_true",
                        help="Start over from step 0: move every checkpoint of run_dir "
                        "(intact or damaged) into run_dir/checkpoints/set-aside-<time>/ "
                        "first, deleting none. Without it a run_dir whose checkpoints are "
                        "all damaged is refused.")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from sagewalk.config import override
    from sagewalk.daemons.trainer import run

    config = load_config(args)
    if args.run_dir is not None:
        config = override(config, f"trainer.run_dir={json.dumps(args.run_dir)}")
    return run(config, fresh=args.fresh)
