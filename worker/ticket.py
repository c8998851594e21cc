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

    @property
    def key(self) -> tuple[int, int]:
        """Identity used for exactly-once acceptance."""
        return (self.epoch, self.batch)
