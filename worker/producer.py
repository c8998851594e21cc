"""One producer process: tickets in, encoded minibatches out.

Two threads.  The I/O thread (the process's main thread) owns the DEALER
socket: it joins the trainer (hello/welcome), takes tickets, heartbeats, sends
finished batches zero-copy and notices a lost trainer.  The build thread turns
tickets into MiniBatches with the sampler's BatchBuilder (numba kernels release
the GIL) and wakes the I/O thread over an inproc socket.  Keeping the socket on
one thread means heartbeats go out even while a long batch is being built, so
only a dead or stopped process goes silent.

Each (re)join starts a new *session*; tickets and batches of an older session
are dropped, since the trainer that issued them is gone or has reissued them.

With no trainer up (started first, or restarting) a producer holds nothing:
the DEALER queues only to live connections (worker.transport), no tickets
arrive, and hellos back off from heartbeat_s, doubling, to liveness_s, so a
producer waiting for hours costs neither memory nor a log line a second.
"""

from __future__ import annotations

import importlib
import logging
import os
import queue
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field

from graphstore.config import GraphstoreConfig
from monitoring import hook
from sampler.config import ModelKind, SamplerConfig
from worker import wire
from worker.config import WorkerConfig
from worker.ticket import Ticket

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProducerSpec:
    """Everything a producer process needs; passed to the spawned child.

    It carries the frozen config sections themselves (they pickle), so a child
    builds from exactly the settings its supervisor holds instead of reading
    the config file again."""

    name: str                      # stable identity, e.g. "host-3"
    endpoint: str
    worker: WorkerConfig
    graphstore: GraphstoreConfig = field(default_factory=GraphstoreConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    model: ModelKind = ModelKind.PINSAGE  # trainer.model: which neighbourhoods to sample
    builder: str = "worker.producer:default_builder"  # "module:callable(spec) -> builder"
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None  # None: no /metrics; 0: any free port
    parent_pid: int = 0
    drain_s: float = 10.0


def default_builder(spec: ProducerSpec):
    """The shipped path: the store, memory-mapped, and the sampler's BatchBuilder."""
    from graphstore import open_store
    from worker.assemble import BatchBuilder

    store = open_store(spec.graphstore.path)
    return BatchBuilder(store, spec.sampler, model=spec.model)


def load_builder(spec: ProducerSpec):
    module, _, attr = spec.builder.partition(":")
    return getattr(importlib.import_module(module), attr)(spec)


def main(spec: ProducerSpec, reports=None) -> None:
    """Process entry point (multiprocessing target).  Exits 0 after a drain."""
    # The supervisor owns Ctrl-C: it turns it into an orderly SIGTERM here, so
    # a terminal's SIGINT to the whole process group does not cut sends short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s producer {spec.name} "
                        "%(levelname)s %(message)s")
    server = None
    if spec.metrics_port is not None:
        from monitoring.exporter import MetricsServerError, serve_metrics
        try:
            server = serve_metrics(spec.metrics_host, spec.metrics_port, role="producer",
                                   instance=spec.name)
        except MetricsServerError as err:
            log.warning("no /metrics for this producer: %s", err)
    if reports is not None:
        reports.put((spec.name, os.getpid(), server.port if server else None))
    producer = Producer(spec, load_builder(spec))
    signal.signal(signal.SIGTERM, lambda *_: producer.stop())
    if server is not None:
        server.drain_on_signals()  # /readyz: "draining" from the signal on
        server.set_ready(True)
    code = producer.run()
    if server is not None:
        server.set_ready(False)
        server.close()
    raise SystemExit(code)


class Producer:
    def __init__(self, spec: ProducerSpec, builder):
        self.spec = spec
        self.cfg = spec.worker
        self.builder = builder
        self.digest = builder.digest
        self.incarnation = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.session = 0
        self.joined = False
        self.last_heard = 0.0
        self._todo: queue.Queue[tuple[int, Ticket]] = queue.Queue()
        self._built: queue.Queue = queue.Queue()
        self._busy = False
        self._stopping = threading.Event()
        self._in_flight: list = []  # (MessageTracker, frames): frames stay alive until sent
        self._next_hello = self._next_beat = 0.0
        self._hello_every = spec.worker.heartbeat_s  # doubles while unanswered
        self._unanswered = 0
        self._failed = False
        self.sent = 0

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> int:
        import zmq

        from worker.transport import dealer

        ctx = zmq.Context()
        self.sock = dealer(ctx, self.cfg, self.spec.endpoint, self.spec.name)
        wake_rx = ctx.socket(zmq.PAIR)
        wake_rx.setsockopt(zmq.LINGER, 0)
        wake_rx.bind(f"inproc://wake-{id(self)}")
        builder = threading.Thread(target=self._build_loop, args=(ctx,), daemon=True)
        builder.start()
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(wake_rx, zmq.POLLIN)
        try:
            while not self._stopping.is_set():
                events = dict(poller.poll(50))
                if self.sock in events:
                    self._receive_all()
                if wake_rx in events:
                    while wake_rx.poll(0):
                        wake_rx.recv()
                self._send_built()
                self._periodic(time.monotonic())
            if not self._failed:
                self._drain()
        finally:
            self._todo.put(None)
            self.sock.close()
            wake_rx.close()
            ctx.term()
        return 1 if self._failed else 0

    # -- from the trainer ------------------------------------------------------
    def _receive_all(self) -> None:
        import zmq

        while True:
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                message = wire.decode(frames, digest=None, max_bytes=1 << 20)
            except wire.WireError as err:
                log.error("unusable message from the trainer: %s", err)
                continue
            self.last_heard = time.monotonic()
            self._on_message(message.header)

    def _on_message(self, header: wire.Header) -> None:
        if header.type == "welcome":
            self.joined = True
            self._hello_every, self._unanswered = self.cfg.heartbeat_s, 0
            log.info("joined the trainer at %s", self.spec.endpoint)
        elif header.type == "refuse":
            log.error("the trainer refused this producer: %s", header.body.get("reason"))
            self._next_hello = time.monotonic() + self.cfg.liveness_s
        elif header.type == "rejoin":
            self._rejoin("the trainer does not know this producer")
        elif header.type == "tickets" and self.joined:
            for raw in header.body.get("tickets", []):
                self._todo.put((self.session, Ticket.from_list(raw)))

    def _rejoin(self, why: str) -> None:
        if self.joined:
            log.warning("%s; joining again", why)
        self.joined = False
        self.session += 1  # tickets and batches of the old session are now stale
        self._next_hello = 0.0
        self._hello_every, self._unanswered = self.cfg.heartbeat_s, 0

    # -- periodic ----------------------------------------------------------------
    def _periodic(self, now: float) -> None:
        if self.spec.parent_pid and os.getppid() != self.spec.parent_pid:
            log.error("supervisor %d is gone; stopping", self.spec.parent_pid)
            self._stopping.set()
        if self.joined and now - self.last_heard > self.cfg.liveness_s:
            self._rejoin(f"no word from the trainer for {now - self.last_heard:.1f} s")
        if not self.joined and now >= self._next_hello:
            self._say_hello(now)
        if self.joined and now >= self._next_beat:
            self._next_beat = now + self.cfg.heartbeat_s
            self._send(wire.control("heartbeat", digest=self.digest, producer=self.spec.name))
        self._in_flight = [(t, f) for t, f in self._in_flight if not t.done]

    def _say_hello(self, now: float) -> None:
        if self._unanswered:  # the last hello went unanswered: wait longer this time
            longer = min(2 * self._hello_every, max(self.cfg.liveness_s, self.cfg.heartbeat_s))
            if longer > self._hello_every:
                log.info("no trainer answering at %s yet; next hello in %.1f s",
                         self.spec.endpoint, longer)
                self._hello_every = longer
        self._unanswered += 1
        self._next_hello = now + self._hello_every
        self._send(wire.control("hello", digest=self.digest, producer=self.spec.name,
                                incarnation=self.incarnation, pid=os.getpid()))

    def _send(self, frames: list, *, track: bool = False):
        import zmq

        try:
            return self.sock.send_multipart(frames, zmq.NOBLOCK, copy=not track, track=track)
        except zmq.Again:
            return None  # no live connection: liveness and reissue take care of it

    # -- batches -----------------------------------------------------------------
    def _build_loop(self, ctx) -> None:
        import zmq

        wake = ctx.socket(zmq.PAIR)
        wake.setsockopt(zmq.LINGER, 0)
        wake.connect(f"inproc://wake-{id(self)}")
        try:
            while (item := self._todo.get()) is not None:
                session, ticket = item
                if session != self.session:
                    continue
                self._busy = True
                started = time.perf_counter()
                batch = self.builder.build(ticket)
                self._built.put((session, batch, time.perf_counter() - started))
                self._busy = False
                wake.send(b"")
        except zmq.ContextTerminated:
            # run() stopped before this build finished (a batch can outlast
            # drain_s on a disk-bound store): it was never sent, so the
            # trainer reissues its ticket.  A clean stop, not a failure.
            log.info("stopped before the batch in hand was sent; its ticket will be reissued")
        except BaseException:
            log.exception("building a batch failed; stopping this producer")
            self._failed = True
            self._stopping.set()
        finally:
            wake.close()

    def _send_built(self) -> None:
        while True:
            try:
                session, batch, seconds = self._built.get_nowait()
            except queue.Empty:
                return
            if session != self.session or not self.joined:
                continue
            frames = wire.encode_batch(batch, digest=self.digest, producer=self.spec.name)
            tracker = self._send(frames, track=True)
            if tracker is None:
                log.warning("could not send %s (no connection); it will be reissued",
                            batch.ticket)
                continue
            self._in_flight.append((tracker, frames))
            self.sent += 1
            nbytes = sum(len(f) for f in frames)
            hook.inc("sagewalk_producer_batches_total", producer=self.spec.name)
            hook.inc("sagewalk_producer_examples_total", batch.size, producer=self.spec.name)
            hook.observe("sagewalk_sampling_seconds", seconds, producer=self.spec.name)
            hook.inc("sagewalk_wire_bytes_total", nbytes, direction="sent")

    def _drain(self) -> None:
        """Finish the batch being built, send it, hand back the rest, say bye."""
        returned = []
        while True:
            try:
                item = self._todo.get_nowait()
            except queue.Empty:
                break
            if item is not None and item[0] == self.session:
                returned.append(list(item[1].key))
        deadline = time.monotonic() + self.spec.drain_s
        while self._busy and time.monotonic() < deadline:
            time.sleep(0.01)
        self._send_built()
        if self.joined:
            self._send(wire.control("bye", digest=self.digest, producer=self.spec.name,
                                    returned=returned))
        while self._in_flight and time.monotonic() < deadline:
            self._in_flight = [(t, f) for t, f in self._in_flight if not t.done]
            time.sleep(0.01)
        log.info("drained: %d batches sent, %d tickets handed back", self.sent, len(returned))
