"""A run's progress as a checkpoint carries it, beside the model and optimiser.

    progress = RunState()
    progress.count(ticket, examples)       # after each trained batch
    progress.rank_state(rank, cursor)      # this rank's share of a checkpoint
    progress.restore(mine, budget, time_budget_s)

One rank's epoch cursor (which batches of the epoch it has trained, from the
stream), the batches done per epoch, the examples trained and the seconds
trained under trainer.time_budget_s: plain data, so a checkpoint stores it as
it is and a resumed run carries on from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RunState:
    cursor: dict | None = None            # the stream's epoch cursor at the last restore
    epoch_done: dict[int, int] = field(default_factory=dict)
    examples: int = 0
    trained_seconds: float = 0.0          # under trainer.time_budget_s, earlier runs included
    budget_spent: bool = False

    def count(self, ticket, examples: int) -> None:
        """One batch of `ticket` trained."""
        self.examples += examples
        self.epoch_done[ticket.epoch] = self.epoch_done.get(ticket.epoch, 0) + 1

    def epochs_done(self) -> dict[str, int]:
        """Batches done per epoch, keyed as JSON and checkpoints keep them."""
        return {str(k): v for k, v in sorted(self.epoch_done.items())}

    def rank_state(self, rank: int, cursor: dict | None) -> dict:
        """What rank `rank` resumes from (`cursor`: the live stream's, or None
        before there is a stream, when the restored one still holds)."""
        return {"rank": rank, "cursor": self.cursor if cursor is None else cursor,
                "epoch_done": {str(k): v for k, v in self.epoch_done.items()},
                "examples": self.examples}

    def budget_state(self, time_budget_s: float, trained_seconds: float) -> dict:
        return {"time_budget_s": time_budget_s, "trained_seconds": trained_seconds,
                "spent": self.budget_spent}

    def restore(self, mine: dict, budget: dict, time_budget_s: float) -> None:
        """From a checkpoint: `mine`, this rank's `rank_state`, and the run's budget."""
        self.cursor = mine["cursor"]
        self.epoch_done = {int(k): int(v) for k, v in mine["epoch_done"].items()}
        self.examples = int(mine["examples"])
        self.trained_seconds = float(budget.get("trained_seconds", 0.0))
        # spent under this very budget: a larger trainer.time_budget_s trains on
        self.budget_spent = (bool(budget.get("spent", False))
                             and float(budget.get("time_budget_s", 0.0)) == time_budget_s)
