"""Which tickets exist, who holds them, which are accepted and which are trained.

The ledger is the exactly-once bookkeeping behind `BatchStream`:

    plan ──next_ticket()──▶ issued to a producer ──accept()──▶ accepted ──done()──▶ done
              ▲                     │ producer died / left
              └──── reissue ◀───────┘

Only *done* tickets (trained, reported by the training loop) go into the
cursor saved in the checkpoint; accepted-but-untrained batches are lost with
a crashed trainer and simply issued again, because a ticket rebuilds the same
batch bit for bit.  All methods take one lock: the receive thread issues and
accepts, the training loop marks done and reads the cursor.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from common.errors import SagewalkError
from worker.ticket import Ticket

CURSOR_VERSION = 1


@dataclass(frozen=True)
class EpochPlan:
    """What to train: `epochs` epochs (numbered 0..epochs-1) of
    `num_batches(epoch)` batches with `hard_negatives(epoch)` per example.

    With several trainer ranks each rank's plan holds the batches
    b % world_size == rank of every epoch (`batches(epoch)`); a ticket depends
    on (base_seed, epoch, batch) only, so the ranks' tickets together are
    exactly the one-process epoch, each once."""

    epochs: int
    num_batches: Callable[[int], int]
    hard_negatives: Callable[[int], int] = lambda epoch: 0
    base_seed: int = 0
    rank: int = 0
    world_size: int = 1

    def __post_init__(self):
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"EpochPlan: rank {self.rank} is not in 0..world_size-1 "
                             f"(world_size {self.world_size})")

    def batches(self, epoch: int) -> range:
        """This rank's batch indices of `epoch`."""
        return range(self.rank, int(self.num_batches(epoch)), self.world_size)

    def steps(self, epoch: int) -> int:
        """Steps every rank takes in `epoch`: its largest share, ⌈batches/N⌉
        (rank 0's); a rank with one batch fewer idles in lockstep once."""
        return -(-int(self.num_batches(epoch)) // self.world_size)

    def ticket(self, epoch: int, batch: int) -> Ticket:
        # SeedSequence mixes the three numbers so neighbouring tickets get
        # unrelated streams; 63 bits keep the seed a non-negative int64.
        state = np.random.SeedSequence([self.base_seed, epoch, batch]).generate_state(2)
        seed = (int(state[0]) << 31 | int(state[1]) >> 1) & ((1 << 63) - 1)
        return Ticket(epoch, batch, seed, int(self.hard_negatives(epoch)))


class CursorError(SagewalkError, ValueError):  # ValueError: what callers caught before
    """A checkpoint's epoch cursor that does not fit this run's epoch plan."""


class Ledger:
    def __init__(self, plan: EpochPlan, cursor: dict | None = None):
        self.plan = plan
        self._lock = threading.Lock()
        self._done: dict[int, set[int]] = {}
        self._first_epoch = 0
        if cursor:
            self._load(cursor)
        # Accepted keys of epochs not yet done; a finished epoch's keys are
        # dropped (its batches are all "done"), so memory stays bounded over
        # a run of any length.  The total is counted apart for the stream.
        self._accepted: set[tuple[int, int]] = set()
        self._accepted_total = 0
        self._holders: dict[tuple[int, int], set[str]] = {}
        self._reissue: deque[tuple[int, int]] = deque()
        self._fresh = self._fresh_keys()
        self._peek = next(self._fresh, None)

    # -- receive thread ----------------------------------------------------
    def next_ticket(self, producer: str) -> Ticket | None:
        """The next ticket for `producer` (lost ones first), or None."""
        with self._lock:
            while self._reissue:
                key = self._reissue.popleft()
                if key not in self._accepted and not self._is_done(key):
                    return self._give(key, producer)
            key, self._peek = self._peek, next(self._fresh, None)
            return None if key is None else self._give(key, producer)

    def accept(self, ticket: Ticket) -> str:
        """'accepted', 'duplicate' or 'unknown' (never issued / not the plan's)."""
        key = ticket.key
        with self._lock:
            if key in self._accepted or self._is_done(key):
                self._holders.pop(key, None)
                return "duplicate"
            if key not in self._holders or ticket != self.plan.ticket(*key):
                return "unknown"
            self._holders.pop(key)
            self._accepted.add(key)
            self._accepted_total += 1
            return "accepted"

    def release(self, producer: str, keys=None) -> int:
        """Take back `producer`'s tickets (all, or `keys`); returns how many
        must be issued again because nobody else holds them."""
        lost = 0
        with self._lock:
            for key, holders in list(self._holders.items()):
                if producer in holders and (keys is None or key in keys):
                    holders.discard(producer)
                    if not holders:
                        del self._holders[key]
                        self._reissue.append(key)
                        lost += 1
        return lost

    def finished(self) -> bool:
        """Every ticket of the plan is accepted or done."""
        with self._lock:
            return self._peek is None and not self._holders and not any(
                k not in self._accepted and not self._is_done(k) for k in self._reissue)

    @property
    def accepted_count(self) -> int:
        """Batches accepted since this ledger was made (never decreases)."""
        return self._accepted_total

    def outstanding(self, producer: str) -> int:
        with self._lock:
            return sum(producer in h for h in self._holders.values())

    # -- training loop -----------------------------------------------------
    def mark_done(self, ticket: Ticket) -> None:
        with self._lock:
            self._done.setdefault(ticket.epoch, set()).add(ticket.batch)
            while (self._first_epoch < self.plan.epochs and len(self._done.get(
                    self._first_epoch, ())) >= len(self.plan.batches(self._first_epoch))):
                self._done.pop(self._first_epoch, None)
                first = self._first_epoch
                self._accepted = {k for k in self._accepted if k[0] != first}
                self._first_epoch += 1

    def state_dict(self) -> dict:
        with self._lock:
            cursor = {"version": CURSOR_VERSION, "epoch": self._first_epoch,
                      "done": {str(e): _ranges(sorted(b)) for e, b in self._done.items() if b}}
            if self.plan.world_size > 1:
                cursor.update(rank=self.plan.rank, world_size=self.plan.world_size)
            return cursor

    @property
    def epoch(self) -> int:
        """The lowest epoch not yet fully trained."""
        return self._first_epoch

    # -- internals ---------------------------------------------------------
    def _give(self, key: tuple[int, int], producer: str) -> Ticket:
        self._holders.setdefault(key, set()).add(producer)
        return self.plan.ticket(*key)

    def _is_done(self, key: tuple[int, int]) -> bool:
        return key[0] < self._first_epoch or key[1] in self._done.get(key[0], ())

    def _fresh_keys(self) -> Iterator[tuple[int, int]]:
        for epoch in range(self._first_epoch, self.plan.epochs):
            for batch in self.plan.batches(epoch):
                if not self._is_done((epoch, batch)):
                    yield (epoch, batch)

    def _load(self, cursor: dict) -> None:
        if cursor.get("version") != CURSOR_VERSION:
            raise CursorError(f"epoch cursor version {cursor.get('version')!r} != "
                              f"{CURSOR_VERSION}; this checkpoint is from another sagewalk")
        try:
            self._first_epoch = int(cursor["epoch"])
            for epoch, ranges in cursor["done"].items():
                self._done[int(epoch)] = {b for lo, hi in ranges for b in range(lo, hi)}
        except (KeyError, TypeError, ValueError) as err:
            raise CursorError(f"malformed epoch cursor {cursor!r}: {err}") from err
        # A cursor says which of the epoch's batches are done *for its rank*;
        # loaded by another rank it would skip batches nobody trained.
        world, rank = self.plan.world_size, self.plan.rank
        saved = (cursor.get("rank", 0), cursor.get("world_size", 1))  # absent: one process
        foreign = [(e, b) for e, done in self._done.items() for b in done if b % world != rank]
        if saved != (rank, world) or foreign:
            raise CursorError(
                f"epoch cursor of rank {saved[0]} of {saved[1]} cannot be resumed by rank "
                f"{rank} of {world}: each rank restores its own cursor, with the same world "
                "size as the run that saved it")


def _ranges(sorted_batches: list[int]) -> list[list[int]]:
    """[0,1,2,5,6] -> [[0,3],[5,7]]: half-open runs keep the cursor small."""
    out: list[list[int]] = []
    for b in sorted_batches:
        if out and out[-1][1] == b:
            out[-1][1] = b + 1
        else:
            out.append([b, b + 1])
    return out
