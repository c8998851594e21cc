"""The trainer daemon: the consumer end of the pipeline.

    sagewalk trainer --config F

Opens the store, builds the sampler's BatchBuilder (batch counts, the wire
digest, held-out pairs and inference batches for validation), the model and
the stream of batches from the producers; resumes from the newest intact
checkpoint in trainer.run_dir; trains; serves /metrics.  SIGTERM/SIGINT: the
current step finishes, a checkpoint is written and the process exits 0.  At the
end it writes run_dir/run_summary.json (stream counters + training figures) and
run_dir/model.pt (`gpu_consumer.model.load_model(run_dir)` rebuilds it).
Under torchrun every rank runs this; rank r binds trainer_endpoint + ".rank<r>"
(tcp: port + r) for its own producers and is issued the batches b % N == r of
each epoch; checkpoints hold every rank's cursor, and rank 0 writes the files.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)


def run(config, fresh: bool = False) -> int:
    import torch

    from gpu_consumer import distributed
    from gpu_consumer.session import TrainingSession
    from gpu_consumer.train import resolve_device
    from graphstore import open_store
    from sagewalk.config import to_toml
    from worker.assemble import BatchBuilder

    rank = distributed.from_environment()
    log.info("trainer (rank %d of %d) resolved config:\n%s", rank.rank, rank.world_size,
             to_toml(config))
    store = open_store(config.graphstore.path)
    builder = BatchBuilder(store, config.sampler, model=config.trainer.model)
    # join the group first: the session's Trainer broadcasts rank 0's weights
    distributed.init(rank, resolve_device(config.trainer.device, rank.local_rank))
    session = TrainingSession(config, store, builder, rank=rank)
    Path(config.trainer.run_dir).mkdir(parents=True, exist_ok=True)
    if fresh and rank.is_main:  # start over on purpose: the old checkpoints move aside
        from gpu_consumer import checkpoint
        checkpoint.set_aside(config.trainer.run_dir)
    if fresh and distributed.active():
        torch.distributed.barrier()  # no rank restores before rank 0 moved them aside
    session.restore()  # NoIntactCheckpoint when every checkpoint is damaged
    server = _metrics_server(config, rank)
    started = time.time()
    # The handlers go in before the stream binds its socket: a SIGTERM that comes
    # once the trainer is reachable must checkpoint, not kill it.  With several
    # ranks the stream stays open until all agree to stop.
    opened: list = []
    _install_signals(session, (lambda: opened and opened[0]()) if rank.world_size == 1
                     else None)
    stream = _open_stream(config, builder, session, rank)
    close_stream = _once(stream.close)
    opened.append(close_stream)
    if session.stop_reason and rank.world_size == 1:
        close_stream()   # signalled while the stream was opening: nothing to wait for
    try:
        if server is not None:
            server.drain_on_signals()  # /readyz: "draining" from the signal on
            server.set_ready(True)
        session.run(stream)
        figures = session.finish()
    finally:
        close_stream()
        if server is not None:
            server.set_ready(False)
            server.close()
        distributed.shutdown()
    if rank.is_main:
        _write_summary(config, stream.summary(), figures, started, torch.__version__)
    log.info("trainer done (%s) after %d steps", figures["stop_reason"], figures["steps"])
    return 0


def rank_endpoint(endpoint: str, rank: int) -> str:
    """Each rank binds its own endpoint so each has its own producers."""
    if rank == 0:
        return endpoint
    if endpoint.startswith("tcp://"):
        host, _, port = endpoint.rpartition(":")
        return f"{host}:{int(port) + rank}"
    return f"{endpoint}.rank{rank}"


def _open_stream(config, builder, session, rank):
    from gpu_consumer.stream import BatchStream

    if rank.world_size > 1:
        log.info("rank %d of %d: trains batches b %% %d == %d of each epoch from its own "
                 "producers; gradients are averaged each step", rank.rank, rank.world_size,
                 rank.world_size, rank.rank)
    stream = BatchStream(config.worker, digest=builder.digest, plan=session.plan,
                         cursor=session.run_state.cursor, prefetch=config.trainer.prefetch,
                         endpoint=rank_endpoint(config.worker.trainer_endpoint, rank.rank))
    return stream.start()


def _metrics_server(config, rank):
    mon = config.monitoring
    if not mon.trainer_port:
        return None
    from monitoring.exporter import serve_metrics
    port = mon.trainer_port + rank.rank if rank.world_size > 1 else mon.trainer_port
    return serve_metrics(mon.host, port, role="trainer", instance=f"trainer-{rank.rank}")


def _once(close):
    """`close` runs once, whichever of the signal thread and the main thread
    gets there first; the other waits for it to finish."""
    lock, done = threading.Lock(), []

    def wrapper():
        with lock:
            if not done:
                close()
                done.append(True)
    return wrapper


def _install_signals(session, close_stream) -> None:
    """Stop after the current step.  The stream is closed from a helper thread
    so a loop blocked waiting for data (no producers) wakes up too."""
    def handler(signum, _frame):
        log.warning("%s: checkpointing and stopping", signal.Signals(signum).name)
        session.stop(signal.Signals(signum).name)
        if close_stream is not None:
            threading.Thread(target=close_stream, name="stream-close", daemon=True).start()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _write_summary(config, stream_summary: dict, figures: dict, started: float,
                   torch_version: str) -> Path:
    from gpu_consumer.checkpoint import write_atomically

    elapsed = time.time() - started
    summary = dict(stream_summary)
    summary.update(figures)
    summary.update(wall_seconds=round(elapsed, 3), torch=torch_version, pid=os.getpid(),
                   examples_per_second=round(figures["examples"] / max(elapsed, 1e-9), 2))
    path = Path(config.trainer.run_dir) / "run_summary.json"
    write_atomically(path, (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode())
    log.info("run summary: %s", path)
    return path
