"""The trainer's side of the transport: a ROUTER that hands out tickets.

Runs in the BatchStream's receive thread and owns the socket.  One step of
the loop: poll, handle each message (hello, batch, heartbeat, bye), declare
silent producers dead and take their tickets back, heartbeat the live ones,
then top every producer up to `worker.credits` tickets in flight — but only
while the prefetch queue has room, so a slow training loop throttles the
producers instead of filling memory.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from gpu_consumer.ledger import Ledger
from monitoring import hook
from worker import wire
from worker.batch import MiniBatch
from worker.config import WorkerConfig

log = logging.getLogger(__name__)


@dataclass
class Peer:
    identity: bytes
    name: str
    incarnation: str
    last_seen: float
    metrics: str = ""


@dataclass
class Stats:
    tickets_issued: int = 0
    batches_accepted: int = 0
    duplicates: int = 0
    gaps: int = 0
    producer_restarts: int = 0
    bytes_received: int = 0
    rejected: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {"tickets_issued": self.tickets_issued, "batches_accepted": self.batches_accepted,
                "duplicates": self.duplicates, "gaps": self.gaps,
                "rejected": dict(self.rejected), "producer_restarts": self.producer_restarts,
                "bytes_received": self.bytes_received}


class Coordinator:
    def __init__(self, sock, worker_cfg: WorkerConfig, *, digest: str, ledger: Ledger,
                 deliver: Callable[[MiniBatch], None], has_room: Callable[[], bool],
                 audit=None):
        self.sock = sock
        self.cfg = worker_cfg
        self.digest = digest
        self.ledger = ledger
        self.deliver = deliver
        self.has_room = has_room
        self.audit = audit  # text file (line-buffered) or None
        self.peers: dict[bytes, Peer] = {}
        self.seen: dict[str, str] = {}  # producer name -> last incarnation
        self.stats = Stats()
        self._next_beat = 0.0
        self._last_warning: dict[str, float] = {}

    def run(self, should_stop: Callable[[], bool]) -> None:
        import zmq

        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        tick_ms = max(10, int(min(self.cfg.heartbeat_s, self.cfg.liveness_s / 4) * 500))
        while not should_stop():
            if poller.poll(tick_ms):
                for _ in range(64):  # drain a burst, then do the periodic work
                    try:
                        frames = self.sock.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    self.handle(frames[0].bytes, frames[1:])
            self.periodic(time.monotonic())

    # -- messages ------------------------------------------------------------
    def handle(self, identity: bytes, frames: list) -> None:
        try:
            message = wire.decode(frames, digest=None, max_bytes=self.cfg.max_message_bytes)
        except wire.WireError as err:
            self._reject(identity, err)
            if err.reason == "wrong_version":
                self._send(identity, "refuse", reason=f"trainer refuses: {err}")
            return
        header = message.header
        if header.type == "hello":
            return self._hello(identity, header)
        peer = self.peers.get(identity)
        if peer is None:
            if header.type == "batch":
                self._reject(identity, wire.WireError("unknown_peer", f"batch {header.ticket} "
                                                      f"from unregistered {header.producer!r}"))
            self._send(identity, "rejoin")
            return
        if header.digest != self.digest:
            return self._reject(identity, wire.WireError(
                "wrong_digest", f"{header.producer!r} sent digest {header.digest!r}, trainer "
                f"expects {self.digest!r}"))
        peer.last_seen = time.monotonic()
        if header.type == "batch":
            self._batch(peer, message)
        elif header.type == "bye":
            self._forget(peer, "left")

    def _hello(self, identity: bytes, header: wire.Header) -> None:
        name = identity.decode(errors="replace")
        if header.digest != self.digest:
            reason = (f"digest mismatch: trainer has {self.digest!r}, producer {name!r} has "
                      f"{header.digest!r}; start both with the same store and [sampler] config")
            self._reject(identity, wire.WireError("wrong_digest", reason))
            self._send(identity, "refuse", reason=reason)
            return
        incarnation = str(header.body.get("incarnation", ""))
        old = self.peers.get(identity)
        if old is not None:
            self._forget(old, "reconnected")
        if name in self.seen and self.seen[name] != incarnation:
            self.stats.producer_restarts += 1
        self.seen[name] = incarnation
        self.peers[identity] = Peer(identity, name, incarnation, time.monotonic(),
                                    str(header.body.get("metrics", "")))
        log.info("producer %s joined (%d connected)", name, len(self.peers))
        hook.set("sagewalk_producers_alive", len(self.peers))
        self._send(identity, "welcome", credits=self.cfg.credits)

    def _batch(self, peer: Peer, message: wire.Message) -> None:
        batch = message.batch
        verdict = self.ledger.accept(batch.ticket)
        if verdict == "duplicate":
            self.stats.duplicates += 1
            hook.inc("sagewalk_duplicate_batches_total")
        elif verdict == "unknown":
            self._reject(peer.identity, wire.WireError(
                "unknown_ticket", f"{peer.name} sent {batch.ticket}, not issued by this trainer"))
        else:
            self.stats.batches_accepted += 1
            self.stats.bytes_received += message.nbytes
            hook.inc("sagewalk_batches_accepted_total")
            hook.inc("sagewalk_wire_bytes_total", message.nbytes, direction="received")
            if self.audit is not None:
                self.audit.write(f"{batch.ticket.epoch} {batch.ticket.batch} {peer.name}\n")
            self.deliver(batch)
        self._top_up(peer)

    def _forget(self, peer: Peer, why: str) -> None:
        self.peers.pop(peer.identity, None)
        lost = self.ledger.release(peer.name)
        self.stats.gaps += lost
        if lost:
            hook.inc("sagewalk_gap_batches_total", lost)
        hook.set("sagewalk_producers_alive", len(self.peers))
        hook.set("sagewalk_batches_in_flight", 0, producer=peer.name)
        log.warning("producer %s %s; %d tickets go to others", peer.name, why, lost)

    # -- periodic work -------------------------------------------------------
    def periodic(self, now: float) -> None:
        for peer in list(self.peers.values()):
            if now - peer.last_seen > self.cfg.liveness_s:
                self._forget(peer, f"silent for {now - peer.last_seen:.1f} s, declared dead")
        if now >= self._next_beat:
            self._next_beat = now + self.cfg.heartbeat_s
            for peer in self.peers.values():
                self._send(peer.identity, "heartbeat")
                hook.set("sagewalk_producer_last_heartbeat_timestamp_seconds",
                         time.time() - (now - peer.last_seen), producer=peer.name)
        for peer in list(self.peers.values()):
            self._top_up(peer)

    def _top_up(self, peer: Peer) -> None:
        if peer.identity not in self.peers:
            return
        held = self.ledger.outstanding(peer.name)
        tickets = []
        while held + len(tickets) < self.cfg.credits and self.has_room():
            ticket = self.ledger.next_ticket(peer.name)
            if ticket is None:
                break
            tickets.append(ticket.as_list())
        if tickets:
            self.stats.tickets_issued += len(tickets)
            hook.inc("sagewalk_tickets_issued_total", len(tickets))
            self._send(peer.identity, "tickets", tickets=tickets)
        hook.set("sagewalk_batches_in_flight", held + len(tickets), producer=peer.name)

    # -- helpers -------------------------------------------------------------
    def _send(self, identity: bytes, type_: str, **body) -> None:
        import zmq

        frames = wire.control(type_, digest=self.digest, producer="trainer", **body)
        try:
            self.sock.send_multipart([identity, *frames], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass  # peer gone or its queue full: liveness handles both

    def _reject(self, identity: bytes, err: wire.WireError) -> None:
        self.stats.rejected[err.reason] += 1
        hook.inc("sagewalk_rejected_messages_total", reason=err.reason)
        now = time.monotonic()
        if now - self._last_warning.get(err.reason, 0.0) > 5.0:  # don't flood the log
            self._last_warning[err.reason] = now
            log.warning("rejected message from %r: %s", identity[:32], err)
