"""The journal contract, run against both journals (SQLite file, Redis Stream on an AOF server)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from steadycache.errors import ConfigurationError
from steadycache.write_behind import DeadLetter, Journal, SqliteJournal, WriteRecord
from tests.conftest import ManualClock
from tests.write_behind.conftest import JournalFactory


def claim_until(
    journal: Journal, consumer: str, *, min_idle: float, want: int, timeout: float = 5.0
) -> list[WriteRecord]:
    """Claim repeatedly (real time passes) until ``want`` records came back."""
    deadline = time.monotonic() + timeout
    got: list[WriteRecord] = []
    while len(got) < want:
        got += journal.claim(consumer, 100, min_idle)
        if time.monotonic() > deadline:
            raise AssertionError(f"claimed {len(got)} of {want} within {timeout}s")
        time.sleep(0.01)
    return got


def test_append_claim_complete_round_trip(make_journal: JournalFactory) -> None:
    journal = make_journal()
    written = [
        journal.append("orders", ("order", 1), {"tenant": "t1"}, {"total": 10}),
        journal.append("orders", ("order", 2), None, [1, b"\x01"]),
        journal.append("orders", "gone", None, None, op="delete"),
    ]
    assert [r.sequence for r in written] == sorted(r.sequence for r in written)
    assert len({r.sequence for r in written}) == 3
    assert len({r.idempotency_key for r in written}) == 3
    assert journal.depth() == 3

    claimed = journal.claim("a", 10, 30.0)
    assert [(r.key, r.scope, r.value, r.op) for r in claimed] == [
        (("order", 1), {"tenant": "t1"}, {"total": 10}, "set"),
        (("order", 2), None, [1, b"\x01"], "set"),
        ("gone", None, None, "delete"),
    ]
    assert [(r.sequence, r.idempotency_key) for r in claimed] == [
        (r.sequence, r.idempotency_key) for r in written
    ]
    assert all(r.attempts == 1 and not r.recovered and not r.superseded for r in claimed)
    # Leased: neither the same consumer nor another gets them again while the lease runs.
    assert journal.claim("a", 10, 30.0) == []
    assert journal.claim("b", 10, 30.0) == []

    for record in claimed:
        assert journal.complete(record) == 0
    assert journal.depth() == 0
    assert journal.lag() == 0.0
    assert journal.claim("b", 10, 0.0) == []


def test_claim_takes_at_most_count_in_append_order(make_journal: JournalFactory) -> None:
    journal = make_journal()
    written = [journal.append("ns", f"k{i}", None, i) for i in range(5)]
    first = journal.claim("a", 2, 30.0)
    second = journal.claim("a", 10, 30.0)
    assert [r.sequence for r in first + second] == [r.sequence for r in written]
    assert len(first) == 2


def test_a_lapsed_lease_is_claimed_by_another_consumer(make_journal: JournalFactory) -> None:
    journal = make_journal()
    written = journal.append("ns", "k", None, 1)
    assert [r.sequence for r in journal.claim("dead", 10, 0.2)] == [written.sequence]
    assert journal.claim("alive", 10, 0.2) == []  # the lease still runs
    (taken,) = claim_until(journal, "alive", min_idle=0.2, want=1)
    assert (taken.sequence, taken.attempts, taken.recovered) == (written.sequence, 2, True)
    assert journal.complete(taken) == 0
    assert journal.depth() == 0


def test_retry_later_waits_for_the_delay(make_journal: JournalFactory) -> None:
    journal = make_journal()
    journal.append("ns", "k", None, 1)
    (first,) = journal.claim("a", 10, 5.0)
    started = time.monotonic()
    assert journal.retry_later(first, 0.3, "ValueError('down')")
    assert journal.claim("a", 10, 5.0) == []
    (again,) = claim_until(journal, "b", min_idle=5.0, want=1)
    assert time.monotonic() - started >= 0.29
    # A scheduled retry, not a rescue from a dead flusher.
    assert (again.sequence, again.attempts, again.recovered) == (first.sequence, 2, False)
    # The first delivery is stale now: it can no longer reschedule or dead-letter the entry.
    assert not journal.retry_later(first, 0.0, "late")
    assert not journal.dead_letter(first, "late")
    assert journal.depth() == 1


def test_dead_letter_keeps_the_record_and_the_error(make_journal: JournalFactory) -> None:
    journal = make_journal()
    kept = journal.append("ns", ("k", 1), {"user": 7}, {"v": 1})
    journal.append("ns", "other", None, 2)
    (record, _) = journal.claim("a", 10, 30.0)
    assert journal.dead_letter(record, "RuntimeError('constraint violated')")
    assert journal.depth() == 1
    assert journal.dead_letters() == [
        DeadLetter(
            WriteRecord(
                namespace="ns",
                key=("k", 1),
                scope={"user": 7},
                value={"v": 1},
                idempotency_key=kept.idempotency_key,
                sequence=kept.sequence,
                enqueued_at=kept.enqueued_at,
                attempts=1,
            ),
            "RuntimeError('constraint violated')",
        )
    ]
    assert journal.dead_letters(limit=0) == []


def test_complete_supersedes_older_writes_of_the_key_wherever_they_wait(
    make_journal: JournalFactory,
) -> None:
    journal = make_journal()
    older = journal.append("ns", "k", None, "old")
    (claimed_older,) = journal.claim("a", 10, 5.0)
    assert journal.retry_later(claimed_older, 0.2, "down")  # waits for its backoff
    newer = journal.append("ns", "k", None, "new")
    unrelated = journal.append("ns", "other", None, "x")
    claimed = journal.claim("a", 10, 5.0)
    assert [r.sequence for r in claimed] == [newer.sequence, unrelated.sequence]
    removed_now = journal.complete(claimed[0])
    journal.complete(claimed[1])
    # The older write is never delivered for applying again: SQLite removes it at once, Redis
    # marks it and acknowledges it as superseded when it comes back.
    time.sleep(0.25)
    back = journal.claim("a", 10, 5.0)
    if removed_now:
        assert back == []
    else:
        assert [(r.sequence, r.superseded) for r in back] == [(older.sequence, True)]
        journal.ack(back)
    assert journal.depth() == 0


def test_complete_removes_superseded_records_of_the_batch(make_journal: JournalFactory) -> None:
    journal = make_journal()
    for value in range(3):
        journal.append("ns", "k", None, value)
    *older, newest = journal.claim("a", 10, 30.0)
    assert journal.complete(newest, older) == 2
    assert journal.depth() == 0
    # Completing twice (a redelivered entry) removes nothing more and breaks nothing.
    assert journal.complete(newest, older) == 0
    journal.append("ns", "k", None, 9)
    (fresh,) = journal.claim("a", 10, 30.0)
    assert (fresh.value, fresh.superseded) == (9, False)


def test_depth_and_lag_follow_the_oldest_waiting_write(make_journal: JournalFactory) -> None:
    clock = ManualClock()
    journal = make_journal(clock=clock)
    assert (journal.depth(), journal.lag()) == (0, 0.0)
    journal.append("ns", "a", None, 1)
    clock.advance(5.0)
    assert journal.lag() == pytest.approx(5.0)
    journal.append("ns", "b", None, 2)
    clock.advance(2.0)
    assert journal.depth() == 2
    assert journal.lag() == pytest.approx(7.0)
    first, second = journal.claim("a", 10, 30.0)
    assert journal.depth() == 2  # leased is still unacknowledged
    journal.complete(first)
    assert journal.depth() == 1
    assert journal.lag() == pytest.approx(2.0)
    journal.dead_letter(second, "x")
    assert (journal.depth(), journal.lag()) == (0, 0.0)


# --- SQLite specifics ----------------------------------------------------------------------


def test_sqlite_sequences_never_reuse_a_deleted_row_id(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.sqlite3")
    try:
        journal.append("ns", "k", None, 1)
        (record,) = journal.claim("a", 1, 30.0)
        journal.complete(record)
        # Without AUTOINCREMENT SQLite would hand out the deleted row's id again, and a writer
        # holding "newer wins" by sequence would ignore this later write.
        assert journal.append("ns", "k", None, 2).sequence > record.sequence
    finally:
        journal.close()


def test_sqlite_journal_is_shared_by_two_handles_on_one_file(tmp_path: Path) -> None:
    one = SqliteJournal(tmp_path / "j.sqlite3")
    two = SqliteJournal(tmp_path / "j.sqlite3")
    try:
        for i in range(20):
            one.append("ns", f"k{i}", None, i)
        got_one = one.claim("one", 7, 30.0)
        got_two = two.claim("two", 100, 30.0)
        assert len(got_one) == 7
        assert len(got_two) == 13
        assert not {r.sequence for r in got_one} & {r.sequence for r in got_two}
        assert two.depth() == 20
    finally:
        one.close()
        two.close()


def test_sqlite_in_memory_journal_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="cannot use WAL"):
        SqliteJournal(":memory:")


def test_sqlite_backoff_uses_the_injected_clock(tmp_path: Path) -> None:
    clock = ManualClock()
    journal = SqliteJournal(tmp_path / "j.sqlite3", clock=clock)
    try:
        journal.append("ns", "k", None, 1)
        (record,) = journal.claim("a", 1, 30.0)
        journal.retry_later(record, 10.0, "down")
        clock.advance(9.9)
        assert journal.claim("a", 1, 30.0) == []
        clock.advance(0.1)
        assert [r.attempts for r in journal.claim("a", 1, 30.0)] == [2]
    finally:
        journal.close()
