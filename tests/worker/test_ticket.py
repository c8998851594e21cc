"""The ticket's wire form is written down once (Ticket.as_list / from_list)."""

from __future__ import annotations

import numpy as np
import pytest

from worker.ticket import Ticket


def test_wire_form_round_trips_from_lists_and_int64_arrays():
    ticket = Ticket(epoch=2, batch=7, seed=2**63 - 1, hard_negatives=3)
    assert ticket.as_list() == [2, 7, 2**63 - 1, 3]
    assert Ticket.from_list(ticket.as_list()) == ticket
    assert Ticket.from_list(np.array(ticket.as_list(), np.int64)) == ticket


def test_a_list_of_another_length_is_refused():
    with pytest.raises(ValueError, match=r"\[epoch, batch, seed, hard_negatives\]"):
        Ticket.from_list([1, 2, 3])
