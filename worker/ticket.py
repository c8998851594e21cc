"""The unit of work the trainer hands to producers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Ticket:
    """Batch `batch` of epoch `epoch`.  Everything a producer needs to rebuild
    the batch bit for bit: the seed is derived from (base seed, epoch, batch) and
    `hard_negatives` is the curriculum level (hard negatives per example)."""

    epoch: int
    batch: int
    seed: int
    hard_negatives: int

    @classmethod
    def from_list(cls, values) -> "Ticket":
        """From its wire form, [epoch, batch, seed, hard_negatives] (any ints)."""
        if len(values) != 4:
            raise ValueError(f"a ticket is [epoch, batch, seed, hard_negatives], got {values!r}")
        return cls(*(int(v) for v in values))

    def as_list(self) -> list[int]:
        """The wire form (msgpack headers, the batch's `ticket` array): the one
        place the field order is written down."""
        return [self.epoch, self.batch, self.seed, self.hard_negatives]

    @property
    def key(self) -> tuple[int, int]:
        """Identity used for exactly-once acceptance."""
        return (self.epoch, self.batch)
