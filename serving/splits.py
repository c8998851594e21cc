"""Leave-last-out split by time, as DGL's PinSAGE example splits MovieLens-1M.

Per user, interactions sorted by timestamp: the last is test, the second to
last validation, the rest train (a user with one interaction keeps it in train;
with two, the earlier is train and the later test).  The graph store is built
from the train interactions only, so neither held-out item leaks into the
neighbourhoods the model sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interactions:
    """Interactions as parallel arrays (dense user and item ids)."""
    users: np.ndarray        # int64 [m]
    items: np.ndarray        # int64 [m]
    timestamps: np.ndarray   # int64 [m]

    def __len__(self) -> int:
        return len(self.users)

    def take(self, rows: np.ndarray) -> "Interactions":
        return Interactions(self.users[rows], self.items[rows], self.timestamps[rows])


@dataclass(frozen=True)
class Split:
    train: Interactions
    valid: Interactions
    test: Interactions


def split_by_time(data: Interactions) -> Split:
    """Split each user's interactions: last -> test, second to last -> valid.

    Ties in timestamp are broken by input order (a stable sort), so the split
    is a pure function of the input file.
    """
    order = np.lexsort((np.arange(len(data)), data.timestamps, data.users))
    users = data.users[order]
    last = np.ones(len(users), dtype=bool)
    last[:-1] = users[1:] != users[:-1]          # last row of each user's run
    second = np.zeros(len(users), dtype=bool)
    second[:-1] = last[1:] & (users[:-1] == users[1:])
    # DGL: a user's single interaction stays in train (size > 1 needed for test).
    first = np.ones(len(users), dtype=bool)
    first[1:] = users[1:] != users[:-1]
    test = last & ~first
    valid = second & ~first
    train = ~(test | valid)
    return Split(data.take(order[train]), data.take(order[valid]), data.take(order[test]))


def latest_items(train: Interactions, num_users: int) -> np.ndarray:
    """Each user's most recent train item (-1 for a user without any); ties go to
    the later row, matching the split's stable order."""
    order = np.lexsort((np.arange(len(train)), train.timestamps, train.users))
    users = train.users[order]
    last = np.ones(len(users), dtype=bool)
    last[:-1] = users[1:] != users[:-1]
    latest = np.full(num_users, -1, dtype=np.int64)
    latest[users[last]] = train.items[order][last]
    return latest
