"""The exactly-once ledger under arbitrary interleavings of issue, accept,
release (producer death) and done, and its cursor across restarts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from gpu_consumer.ledger import CursorError, EpochPlan, Ledger, _ranges


def plan(epochs=2, batches=7):
    return EpochPlan(epochs, num_batches=lambda e: batches, hard_negatives=lambda e: e)


def test_tickets_are_reproducible_and_distinct():
    a, b = plan(), plan()
    assert a.ticket(1, 3) == b.ticket(1, 3)
    seeds = {a.ticket(e, i).seed for e in range(3) for i in range(100)}
    assert len(seeds) == 300 and all(0 <= s < 2**63 for s in seeds)
    assert a.ticket(1, 3).hard_negatives == 1


@given(st.lists(st.tuples(st.sampled_from(["issue", "accept", "release", "done"]),
                          st.sampled_from(["p0", "p1", "p2"]), st.integers(0, 30)),
                max_size=200))
@settings(max_examples=200, deadline=None)
def test_any_interleaving_accepts_each_ticket_at_most_once(ops):
    ledger = Ledger(plan())
    held: dict[str, list] = {"p0": [], "p1": [], "p2": []}
    accepted = []
    for op, producer, k in ops:
        if op == "issue":
            ticket = ledger.next_ticket(producer)
            if ticket is not None:
                held[producer].append(ticket)
        elif op == "accept" and held[producer]:
            ticket = held[producer].pop(k % len(held[producer]))
            if ledger.accept(ticket) == "accepted":
                accepted.append(ticket.key)
        elif op == "release":
            ledger.release(producer)
            held[producer].clear()
        elif op == "done" and accepted:
            ledger.mark_done(plan().ticket(*accepted[k % len(accepted)]))
    assert len(accepted) == len(set(accepted))
    # drain: one healthy producer finishes whatever is left
    while not ledger.finished():
        ticket = ledger.next_ticket("p9")
        assert ticket is not None, "tickets outstanding with nobody to build them"
        if ledger.accept(ticket) == "accepted":
            accepted.append(ticket.key)
        for producer in held:
            ledger.release(producer)
            held[producer].clear()
    assert sorted(accepted) == [(e, b) for e in range(2) for b in range(7)]


@given(st.sets(st.tuples(st.integers(0, 2), st.integers(0, 9))))
@settings(max_examples=100, deadline=None)
def test_cursor_round_trip_skips_exactly_the_done_tickets(done):
    p = plan(3, 10)
    first = Ledger(p)
    for key in done:
        first.mark_done(p.ticket(*key))
    second = Ledger(p, first.state_dict())
    issued = []
    while (ticket := second.next_ticket("p")) is not None:
        issued.append(ticket.key)
        assert second.accept(ticket) == "accepted"
    assert sorted(set(issued) | done) == [(e, b) for e in range(3) for b in range(10)]
    assert not set(issued) & done
    assert second.finished()


def test_cursor_is_compact_and_advances_by_epoch():
    p = plan(2, 5)
    ledger = Ledger(p)
    for b in (0, 1, 2, 4):
        ledger.mark_done(p.ticket(0, b))
    assert ledger.state_dict() == {"version": 1, "epoch": 0, "done": {"0": [[0, 3], [4, 5]]}}
    ledger.mark_done(p.ticket(0, 3))
    assert ledger.state_dict() == {"version": 1, "epoch": 1, "done": {}}
    assert _ranges([]) == []


def test_duplicates_and_foreign_tickets():
    p = plan()
    ledger = Ledger(p)
    ticket = ledger.next_ticket("p0")
    assert ledger.accept(ticket) == "accepted"
    assert ledger.accept(ticket) == "duplicate"
    assert ledger.accept(p.ticket(1, 6)) == "unknown"  # never issued
    forged = ledger.next_ticket("p0")
    assert ledger.accept(forged.__class__(forged.epoch, forged.batch, 1, 0)) == "unknown"


def test_bad_cursor_is_a_clear_error():
    with pytest.raises(CursorError, match="version"):
        Ledger(plan(), {"version": 99})
    with pytest.raises(CursorError, match="malformed"):
        Ledger(plan(), {"version": 1, "done": {}})
