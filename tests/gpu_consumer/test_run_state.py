"""RunState: a rank's progress, as a checkpoint stores and restores it."""

from __future__ import annotations

import json

from gpu_consumer.run_state import RunState
from worker.ticket import Ticket


def test_counts_round_trip_through_a_checkpoint_as_plain_data():
    state = RunState()
    for batch, epoch in enumerate([0, 0, 1]):
        state.count(Ticket(epoch, batch, 7, 0), examples=4)
    assert state.epoch_done == {0: 2, 1: 1} and state.examples == 12
    mine = json.loads(json.dumps(state.rank_state(3, {"epoch": 1, "done": [0]})))
    budget = json.loads(json.dumps(state.budget_state(10.0, 6.5)))
    assert mine == {"rank": 3, "cursor": {"epoch": 1, "done": [0]},
                    "epoch_done": {"0": 2, "1": 1}, "examples": 12}
    again = RunState()
    again.restore(mine, budget, time_budget_s=10.0)
    assert (again.cursor, again.epoch_done, again.examples, again.trained_seconds) == (
        {"epoch": 1, "done": [0]}, {0: 2, 1: 1}, 12, 6.5)
    assert again.epochs_done() == {"0": 2, "1": 1}


def test_no_live_cursor_keeps_the_restored_one():
    state = RunState(cursor={"epoch": 0})
    assert state.rank_state(0, None)["cursor"] == {"epoch": 0}


def test_a_spent_budget_stays_spent_only_under_the_same_budget():
    spent = {"time_budget_s": 10.0, "trained_seconds": 10.2, "spent": True}
    mine = {"cursor": None, "epoch_done": {}, "examples": 0}
    same, larger = RunState(), RunState()
    same.restore(mine, spent, time_budget_s=10.0)
    larger.restore(mine, spent, time_budget_s=20.0)
    assert same.budget_spent and not larger.budget_spent
    assert larger.trained_seconds == 10.2
