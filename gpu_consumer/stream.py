"""BatchStream: the training loop's view of the producers.

    plan = EpochPlan(epochs, num_batches=builder.num_batches, hard_negatives=curriculum)
    stream = BatchStream(config.worker, digest=builder.digest, plan=plan, cursor=saved)
    stream.start()
    for tbatch in stream:                 # each ticket of the plan once, in any order
        train(tbatch.to(device)); stream.done(tbatch.ticket)
    checkpoint["cursor"] = stream.state_dict()

A receive thread runs the `Coordinator` (ROUTER socket, tickets, credits,
liveness), decodes each accepted batch into a `TensorBatch` (pinned when CUDA
is present) and puts it on a bounded prefetch queue.  Iteration ends when
every ticket of the plan has been delivered; time the loop spends waiting for
the queue is `data_wait_seconds`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import warnings
from typing import Callable

from gpu_consumer.ledger import EpochPlan, Ledger
from gpu_consumer.receiver import to_tensor_batch
from gpu_consumer.tensors import TensorBatch
from monitoring import hook
from worker.batch import MiniBatch
from worker.config import WorkerConfig
from worker.ticket import Ticket

__all__ = ["BatchStream", "EpochPlan"]
log = logging.getLogger(__name__)


class BatchStream:
    def __init__(self, worker_cfg: WorkerConfig, *, digest: str, plan: EpochPlan,
                 cursor: dict | None = None, prefetch: int = 8, endpoint: str | None = None,
                 pin: bool | None = None):
        self.cfg = worker_cfg
        self.digest = digest
        self.plan = plan
        self.endpoint = endpoint or worker_cfg.trainer_endpoint
        self.prefetch = prefetch
        self.ledger = Ledger(plan, cursor)
        self._pin = pin
        self._queue: queue.Queue[TensorBatch] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._coordinator = None
        self._close_lock = threading.Lock()
        self._delivered = 0
        self.data_wait_seconds = 0.0
        # Checked while waiting for a batch: once true the iteration ends (the
        # trainer's wall-clock budget spent while the producers are slow).
        self.give_up: Callable[[], bool] | None = None
        self.gave_up = False

    def start(self) -> "BatchStream":
        """Bind the trainer endpoint and start receiving; returns self."""
        import torch
        import zmq

        from gpu_consumer.coordinator import Coordinator
        from worker.transport import router

        if self._pin is None:
            self._pin = torch.cuda.is_available()
        # Received buffers are read-only zmq frames, wrapped without a copy;
        # the trainer never writes into its inputs, so torch's warning is noise.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        self._ctx = zmq.Context()
        self._sock, self._auth = router(self._ctx, self.cfg, self.endpoint)
        # Line-buffered: each accepted ticket reaches the kernel at once and
        # survives a kill -9 of the trainer.
        self._audit = open(self.cfg.audit_log, "a", buffering=1) if self.cfg.audit_log else None
        self._coordinator = Coordinator(self._sock, self.cfg, digest=self.digest,
                                        ledger=self.ledger, deliver=self._deliver,
                                        has_room=lambda: self._queue.qsize() < self.prefetch,
                                        audit=self._audit)
        self._thread = threading.Thread(target=self._receive, name="batch-receiver", daemon=True)
        self._thread.start()
        return self

    def __iter__(self):
        while True:
            started = time.perf_counter()
            tbatch = self._next()
            waited = time.perf_counter() - started
            self.data_wait_seconds += waited
            hook.inc("sagewalk_trainer_data_wait_seconds_total", waited)
            if tbatch is None:
                return
            hook.set("sagewalk_prefetch_queue_batches", self._queue.qsize())
            yield tbatch

    def done(self, ticket: Ticket) -> None:
        """The batch of `ticket` is trained; the epoch cursor may advance."""
        self.ledger.mark_done(ticket)

    def state_dict(self) -> dict:
        """Epoch cursor (plain data) for the trainer's checkpoint."""
        return self.ledger.state_dict()

    @property
    def epoch(self) -> int:
        """Lowest epoch with batches not yet done."""
        return self.ledger.epoch

    def summary(self) -> dict:
        """Counters for run_summary.json."""
        stats = self._coordinator.stats.as_dict() if self._coordinator else {}
        stats["producers_connected"] = len(self._coordinator.peers) if self._coordinator else 0
        stats["data_wait_seconds"] = round(self.data_wait_seconds, 6)
        return stats

    def close(self) -> None:
        """Stop receiving and release the socket; safe to call twice and from
        another thread (a signal handler) while the loop is iterating."""
        self._stop.set()
        with self._close_lock:
            if self._thread is not None:
                self._thread.join(timeout=5)
            if self._coordinator is not None and not self._sock.closed:
                self._sock.close()
                if self._auth is not None:
                    self._auth.stop()
                self._ctx.term()
                if self._audit is not None:
                    self._audit.close()

    def __enter__(self) -> "BatchStream":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- receive thread ------------------------------------------------------
    def _receive(self) -> None:
        try:
            self._coordinator.run(self._stop.is_set)
        except BaseException as err:  # surfaced to the training loop by _next
            log.exception("receive thread failed")
            self._error = err

    def _deliver(self, batch: MiniBatch) -> None:
        self._queue.put(to_tensor_batch(batch, pin=self._pin))
        self._delivered += 1  # after the put: _next relies on this order
        hook.set("sagewalk_prefetch_queue_batches", self._queue.qsize())

    def _next(self) -> TensorBatch | None:
        while True:
            try:
                return self._queue.get(timeout=0.05)
            except queue.Empty:
                if self._error is not None:
                    raise RuntimeError(f"batch receive thread failed: {self._error!r}") \
                        from self._error
                if (self.ledger.finished() and self._queue.empty()
                        and self._delivered == self.ledger.accepted_count):
                    return None
                if self._stop.is_set():
                    return None
                if self.give_up is not None and self.give_up():
                    self.gave_up = True
                    return None
