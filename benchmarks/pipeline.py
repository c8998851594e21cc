"""End-to-end pipeline throughput: real producers feeding the real training loop.

For 1 and 2 producer processes (the sampler supervisor, the real BatchBuilder
on a synthetic store): batches/s and the trainer's data-wait ratio (time the
loop waited for a batch / wall time) while `TrainingSession.run` trains the
default PinSage model on CPU (or CUDA when present), and batches/s with a
consumer that does no work, which shows how sampling scales with producers.

    python benchmarks/pipeline.py [--quick]
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CONFIG = """\
[graphstore]
path = "{tmp}/store"
[sampler]
batch_size = {batch_size}
num_walks = {num_walks}
walk_length = {walk_length}
[worker]
producers = {producers}
trainer_endpoint = "ipc://{tmp}/trainer-{producers}-{mode}.sock"
control_endpoint = "ipc://{tmp}/control-{producers}-{mode}.sock"
[trainer]
epochs = 1000
batches_per_epoch = {batches}
hidden_dim = 128
embedding_dim = 64
run_dir = "{tmp}/run-{producers}-{mode}"
checkpoint_every_s = 3600
validate_every = 0
[monitoring]
trainer_port = 0
sampler_port = 0
producer_base_port = 0
"""


def build_store(tmp: Path, quick: bool) -> None:
    import numpy as np

    from graphstore import build_from_arrays
    from graphstore.synth import generate

    items, users = (5_000, 10_000) if quick else (50_000, 100_000)
    graph = generate(20 * items, items, users, 20, seed=0)
    features = np.random.default_rng(0).standard_normal((items, 64)).astype(np.float16)
    build_from_arrays(tmp / "store", edges={"rates": ("item", "user", graph.items, graph.users)},
                      node_counts={"item": items, "user": users}, features={"item": features})


def measure(tmp: Path, producers: int, mode: str, batches: int, args) -> dict:
    from gpu_consumer.session import TrainingSession
    from gpu_consumer.stream import BatchStream, EpochPlan
    from graphstore import open_store
    from sagewalk.config import load
    from worker.assemble import BatchBuilder
    from worker.supervisor import Supervisor

    path = tmp / f"config-{producers}-{mode}.toml"
    # Skip the start-up: numba compiles, then credits and the prefetch queue
    # fill; the clock starts once that many batches have gone by.
    warmup = 8 * producers + 8 + 1
    path.write_text(CONFIG.format(tmp=tmp, producers=producers, mode=mode,
                                  batches=batches + warmup,
                                  batch_size=args.batch_size, num_walks=args.num_walks,
                                  walk_length=args.walk_length))
    config = load(path)
    builder = BatchBuilder(open_store(config.graphstore.path), config.sampler)
    plan = EpochPlan(1, num_batches=lambda e: batches + warmup)
    stream = BatchStream(config.worker, digest=builder.digest, plan=plan,
                         prefetch=config.trainer.prefetch).start()
    supervisor = Supervisor(config)   # its producers get these sections
    thread = threading.Thread(target=supervisor.run, daemon=True)
    thread.start()
    session = TrainingSession(config, builder.store, builder) if mode == "train" else None
    for _, tbatch in zip(range(warmup), stream):
        stream.done(tbatch.ticket)
    wait0, started = stream.data_wait_seconds, time.perf_counter()
    if session is not None:
        session.run(stream)
    else:
        for tbatch in stream:
            stream.done(tbatch.ticket)
    wall = time.perf_counter() - started
    supervisor.request_stop()
    thread.join(60)
    stream.close()
    wait = stream.data_wait_seconds - wait0
    return {"batches_per_s": round(batches / wall, 2),
            "examples_per_s": round(batches * args.batch_size / wall, 1),
            "data_wait_ratio": round(wait / wall, 3), "batches": batches,
            "seconds": round(wall, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Small store, few batches.")
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--num-walks", type=int, default=10)
    parser.add_argument("--walk-length", type=int, default=50)
    args = parser.parse_args()
    if args.quick:
        args.batches, args.batch_size, args.num_walks, args.walk_length = 40, 128, 5, 10
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    tmp = Path(tempfile.mkdtemp(prefix="sagewalk-pipeline-"))
    build_store(tmp, args.quick)
    results = {}
    for mode in ("train", "sample_only"):
        for producers in (1, 2):
            results[f"{mode}_{producers}_producers"] = measure(tmp, producers, mode,
                                                               args.batches, args)
    s1 = results["sample_only_1_producers"]["batches_per_s"]
    s2 = results["sample_only_2_producers"]["batches_per_s"]
    import torch
    print(json.dumps({
        "benchmark": "pipeline", "quick": args.quick, "batch_size": args.batch_size,
        "num_walks": args.num_walks, "walk_length": args.walk_length,
        "device": "cuda" if torch.cuda.is_available() else "cpu", **results,
        "producer_scaling_2_over_1": round(s2 / s1, 2),
        "load_average": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
