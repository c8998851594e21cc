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


def drain(ledger):
    """Issue, accept and train every ticket the ledger has; their keys in order."""
    keys = []
    while (ticket := ledger.next_ticket("p")) is not None:
        assert ledger.accept(ticket) == "accepted"
        ledger.mark_done(ticket)
        keys.append(ticket)
    return keys


@given(st.integers(0, 40), st.integers(1, 5), st.integers(1, 3))
@settings(max_examples=100, deadline=None)
def test_ranks_split_each_epoch_exactly_with_the_one_process_tickets(batches, world, epochs):
    def ranked(rank):
        return EpochPlan(epochs, num_batches=lambda e: batches + e, hard_negatives=lambda e: e,
                         base_seed=5, rank=rank, world_size=world)
    single = drain(Ledger(ranked(0) if world == 1 else EpochPlan(
        epochs, num_batches=lambda e: batches + e, hard_negatives=lambda e: e, base_seed=5)))
    per_rank = [drain(Ledger(ranked(r))) for r in range(world)]
    union = [t for tickets in per_rank for t in tickets]
    assert sorted(union, key=lambda t: t.key) == single  # same tickets, each once
    for r, tickets in enumerate(per_rank):
        assert all(t.batch % world == r for t in tickets)
        for e in range(epochs):  # at most one batch fewer than rank 0's ⌈batches/N⌉ steps
            mine = sum(t.epoch == e for t in tickets)
            assert ranked(r).steps(e) - 1 <= mine <= ranked(r).steps(e)
            assert mine == len(ranked(r).batches(e))


def test_each_rank_resumes_its_own_cursor_and_refuses_another_ranks():
    def ranked(rank):
        return EpochPlan(2, num_batches=lambda e: 7, rank=rank, world_size=2)
    first = Ledger(ranked(1))
    trained = [first.next_ticket("p") for _ in range(2)]
    for ticket in trained:
        first.accept(ticket)
        first.mark_done(ticket)
    cursor = first.state_dict()
    rest = drain(Ledger(ranked(1), cursor))
    assert {t.key for t in trained} | {t.key for t in rest} == {
        (e, b) for e in range(2) for b in range(1, 7, 2)}
    assert not {t.key for t in trained} & {t.key for t in rest}
    with pytest.raises(CursorError, match="rank 1 of 2 cannot be resumed by rank 0 of 2"):
        Ledger(ranked(0), cursor)
    for _ in range(1):  # epoch 0 done: the compact cursor still names its rank
        ticket = first.next_ticket("p")
        first.accept(ticket)
        first.mark_done(ticket)
    assert first.state_dict()["epoch"] == 1
    with pytest.raises(CursorError, match="rank 1 of 2 cannot be resumed by rank 0"):
        Ledger(ranked(0), first.state_dict())
    with pytest.raises(ValueError, match="rank 2 is not in"):
        EpochPlan(1, num_batches=lambda e: 1, rank=2, world_size=2)


def test_memory_stays_bounded_over_many_epochs():
    # A soak trains for days: a finished epoch's accepted keys are dropped,
    # while the count the stream compares with its deliveries keeps growing.
    ledger = Ledger(plan(epochs=200, batches=7))
    while (ticket := ledger.next_ticket("p0")) is not None:
        assert ledger.accept(ticket) == "accepted"
        ledger.mark_done(ticket)
        assert len(ledger._accepted) <= 7
    assert ledger.accepted_count == 200 * 7 and ledger.finished()
    assert ledger.accept(plan(epochs=200, batches=7).ticket(3, 2)) == "duplicate"
