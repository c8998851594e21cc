"""`sagewalk embed`: every item's embedding, layer by layer, resumable."""

from __future__ import annotations

import argparse

from sagewalk.commands._common import add_config_args, load_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "embed", help="Compute all-node embeddings layer by layer (PinSage's MapReduce "
        "inference) in N processes; rerunning resumes from finished chunks.")
    add_config_args(parser)
    parser.add_argument("--run", dest="run_dir", metavar="RUN_DIR", default=None,
                        help="Trainer run directory with model.pt (default trainer.run_dir).")
    parser.add_argument("--store", metavar="DIR", default=None,
                        help="Store (default graphstore.path).")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="Job directory for tables and progress (default RUN_DIR/embed).")
    parser.add_argument("--export", metavar="DIR", default=None,
                        help="Also write embeddings.npy (float32 [n, d]; with "
                        "trainer.candidate_prior the last column is the prior beta), ids.txt "
                        "and vectors.json here.")
    parser.add_argument("--processes", type=int, default=None,
                        help="Local processes (default serving.processes).")
    parser.add_argument("--chunk", type=int, default=None,
                        help="Nodes per chunk (default serving.chunk_nodes).")
    parser.add_argument("--engine", choices=["local", "ray"], default="local",
                        help="local processes, or Ray Data (optional extra: pip install "
                        "'ray[data]').")
    parser.add_argument("--no-progress", action="store_true", help="No progress bar.")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from serving.embed import EmbedError, EmbedJob, embed_all, export
    config = load_config(args)
    run_dir = args.run_dir or config.trainer.run_dir
    processes = args.processes or config.serving.processes
    chunk = args.chunk or config.serving.chunk_nodes
    if processes < 1 or chunk < 1:
        raise EmbedError(f"--processes and --chunk must be >= 1, got {processes} and {chunk}")
    job = EmbedJob(store_path=args.store or config.graphstore.path, run_dir=run_dir,
                   out_dir=args.out or str(Path(run_dir) / "embed"),
                   sampler=config.sampler, chunk_nodes=chunk, processes=processes)
    result = embed_all(job, progress=not args.no_progress, engine=args.engine)
    prior = " incl. the candidate prior column" if result.prior else ""
    print(f"embedded {result.num_nodes:,} {config.sampler.item_type} nodes (dim "
          f"{result.dim}{prior}) in {result.seconds:.1f} s: {result.chunks_run} chunks run, "
          f"{result.chunks_skipped} already done -> {result.out_dir}")
    if args.export:
        from graphstore import open_store
        out = export(result.out_dir, open_store(job.store_path), config.sampler.item_type,
                     Path(args.export))
        print(f"exported embeddings.npy and ids.txt -> {out}")
    return 0
