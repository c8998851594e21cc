"""Transport throughput: 4 MiB minibatches from a producer process to the trainer.

Three measurements in one run, same batches, same ipc:// socket type:
  raw_zero_copy   DEALER -> ROUTER, worker.wire frames sent with copy=False and
                  decoded (header schema, sizes, crc32) on arrival;
  raw_msgpack     the same arrays packed into one msgpack message (copying);
  stream          the full path: BatchStream (tickets, credits, ledger,
                  TensorBatch) fed by a real producer process (worker.producer)
                  whose builder returns a prebuilt batch, so only transport is timed.

    python benchmarks/transport.py [--quick] [--mib 4] [--batches 400]
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sampler.records import Block, ComputationGraph  # noqa: E402
from worker.batch import MiniBatch  # noqa: E402
from worker.ticket import Ticket  # noqa: E402

DIGEST = "bench"


def make_batch(ticket: Ticket, mib: float) -> MiniBatch:
    """A PinSage-shaped batch whose float16 features make it ~`mib` MiB."""
    targets, k, dim = 1536, 25, 128
    rows = max(targets, int(mib * (1 << 20) / (dim * 2)))
    rng = np.random.default_rng(0)
    nodes = np.arange(rows, dtype=np.int64)
    block = Block(targets, rng.integers(0, rows, (targets, k)).astype(np.int32),
                  rng.random((targets, k), dtype=np.float32))
    graph = ComputationGraph((nodes, nodes[:targets]), (block,))
    half = targets // 3
    return MiniBatch(ticket, graph, rng.random((rows, dim)).astype(np.float16),
                     np.arange(half, dtype=np.int32), np.arange(half, 2 * half, dtype=np.int32),
                     np.arange(500, dtype=np.int32), np.zeros((half, 0), np.int32))


class PrebuiltBuilder:
    digest = DIGEST

    def __init__(self, mib: float):
        self.batch = make_batch(Ticket(0, 0, 0, 0), mib)

    def build(self, ticket: Ticket) -> MiniBatch:
        return replace(self.batch, ticket=ticket)


def prebuilt_builder(spec) -> PrebuiltBuilder:
    return PrebuiltBuilder(float(os.environ.get("SAGEWALK_BENCH_MIB", "4")))


def raw_sender(endpoint: str, mib: float, count: int, packed: bool) -> None:
    import msgpack
    import zmq

    from worker import wire

    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 5000)
    sock.setsockopt(zmq.SNDHWM, 8)
    sock.connect(endpoint)
    batch = make_batch(Ticket(0, 0, 0, 0), mib)
    for i in range(count):
        if packed:
            arrays = batch.to_arrays()
            sock.send(msgpack.packb({n: [a.dtype.str, list(a.shape), a.tobytes()]
                                     for n, a in arrays.items()}))
        else:
            sock.send_multipart(wire.encode_batch(batch, digest=DIGEST, producer="b"),
                                copy=False)
    sock.close()
    ctx.term()


def raw_receive(endpoint: str, mib: float, count: int, packed: bool) -> dict:
    import msgpack
    import zmq

    from worker import wire

    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVHWM, 8)
    sock.bind(endpoint)
    sender = mp.get_context("spawn").Process(target=raw_sender,
                                             args=(endpoint, mib, count, packed))
    sender.start()
    nbytes = 0
    for i in range(count):
        frames = sock.recv_multipart(copy=False)
        if i == 0:
            started = time.perf_counter()  # exclude process start-up
            continue
        if packed:
            raw = msgpack.unpackb(frames[1].buffer)
            arrays = {n: np.frombuffer(b, dtype=d).reshape(s) for n, (d, s, b) in raw.items()}
            MiniBatch.from_arrays(arrays)
            nbytes += len(frames[1])
        else:
            nbytes += wire.decode(frames[1:], digest=DIGEST, max_bytes=1 << 30).nbytes
    seconds = time.perf_counter() - started
    sender.join()
    sock.close()
    ctx.term()
    return {"gb_per_s": round(nbytes / seconds / 1e9, 3), "batches": count - 1,
            "seconds": round(seconds, 3)}


def stream_receive(endpoint: str, mib: float, count: int, credits: int) -> dict:
    from gpu_consumer.stream import BatchStream, EpochPlan
    from worker.config import WorkerConfig
    from worker.producer import ProducerSpec, main as producer_main

    os.environ["SAGEWALK_BENCH_MIB"] = str(mib)
    cfg = WorkerConfig(trainer_endpoint=endpoint, credits=credits)
    plan = EpochPlan(1, num_batches=lambda e: count)
    stream = BatchStream(cfg, digest=DIGEST, plan=plan, prefetch=8).start()
    spec = ProducerSpec(name="bench-0", endpoint=endpoint, worker=cfg,
                        builder="transport:prebuilt_builder", parent_pid=os.getpid())
    producer = mp.get_context("spawn").Process(target=producer_main, args=(spec,))
    producer.start()
    nbytes = 0
    for i, tbatch in enumerate(stream):
        if i == 0:
            started = time.perf_counter()
            wait0 = stream.data_wait_seconds
        else:
            nbytes += sum(t.numel() * t.element_size() for t in (
                tbatch.features, *tbatch.node_sets, *tbatch.nbr_index, *tbatch.nbr_weight))
        stream.done(tbatch.ticket)
    seconds = time.perf_counter() - started
    wait = stream.data_wait_seconds - wait0
    producer.terminate()
    producer.join()
    stream.close()
    return {"gb_per_s": round(nbytes / seconds / 1e9, 3), "batches": count - 1,
            "seconds": round(seconds, 3), "data_wait_ratio": round(wait / seconds, 3)}


def _summarise(rounds: list[dict]) -> dict:
    rates = sorted(r["gb_per_s"] for r in rounds)
    out = {"gb_per_s": rates[len(rates) // 2], "best_gb_per_s": rates[-1],
           "rounds": len(rounds), "batches_per_round": rounds[0]["batches"]}
    if "data_wait_ratio" in rounds[0]:
        out["data_wait_ratio"] = sorted(r["data_wait_ratio"] for r in rounds)[len(rounds) // 2]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Fewer batches (CI smoke run).")
    parser.add_argument("--mib", type=float, default=4.0, help="Batch size in MiB.")
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3,
                        help="Rounds per measurement; median and best are reported (the "
                        "machine is shared, single rounds are noisy).")
    parser.add_argument("--credits", type=int, default=8,
                        help="Batches in flight (worker.credits) for the stream run.")
    args = parser.parse_args()
    count, repeats = (100, 2) if args.quick else (args.batches, args.repeats)
    tmp = tempfile.mkdtemp(prefix="sagewalk-bench-")
    rounds = {"raw_zero_copy": [], "raw_msgpack": [], "stream": []}
    for r in range(repeats):  # interleaved, so load changes hit all three alike
        rounds["raw_zero_copy"].append(raw_receive(f"ipc://{tmp}/raw{r}.sock", args.mib,
                                                   count, packed=False))
        rounds["raw_msgpack"].append(raw_receive(f"ipc://{tmp}/packed{r}.sock", args.mib,
                                                 count, packed=True))
        rounds["stream"].append(stream_receive(f"ipc://{tmp}/stream{r}.sock", args.mib,
                                               count, args.credits))
    zero, packed, full = (_summarise(rounds[k]) for k in ("raw_zero_copy", "raw_msgpack",
                                                           "stream"))
    print(json.dumps({
        "benchmark": "transport", "endpoint": "ipc", "batch_mib": args.mib, "quick": args.quick,
        "credits": args.credits,
        "raw_zero_copy": zero, "raw_msgpack": packed, "stream": full,
        "zero_copy_over_msgpack": round(zero["gb_per_s"] / packed["gb_per_s"], 2),
        "target_gb_per_s": 1.5, "stream_meets_target": full["gb_per_s"] >= 1.5,
        "load_average": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
