"""A key's writes stay in order: an older write is never applied after a newer one was tried.

The rule is pure (``ordering.claimable``); the interleavings below are the ones that broke it,
each made to happen on purpose, on both journals. SQLite's leases and backoff follow the
injected clock, so there time is moved by hand; Redis's follow the server's clock, so there
time really passes, with margins of several tenths of a second either way.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from steadycache.write_behind import Flusher, Journal, SqliteJournal, WriteRecord
from steadycache.write_behind.ordering import EntryState, claimable
from tests.conftest import ManualClock
from tests.write_behind.conftest import JournalFactory

# --- the rule, without a journal ------------------------------------------------------------

NEW = EntryState(delivered=False, leased=False, due=True)
RETRY_DUE = EntryState(delivered=True, leased=False, due=True)
RETRY_WAITING = EntryState(delivered=True, leased=False, due=False)
LEASED = EntryState(delivered=True, leased=True, due=False)


def test_new_writes_of_a_key_go_together() -> None:
    assert claimable([NEW, NEW, NEW], 10) == [0, 1, 2]


def test_a_batch_limit_keeps_the_newest_writes_of_a_key() -> None:
    # What stays behind is older than what goes: coalesced if that is applied, else it waits.
    assert claimable([RETRY_DUE, RETRY_DUE, NEW], 2) == [1, 2]
    assert claimable([NEW, NEW], 0) == []


def test_nothing_of_a_key_goes_while_one_of_its_writes_is_leased() -> None:
    assert claimable([LEASED, NEW], 10) == []
    assert claimable([RETRY_DUE, LEASED], 10) == []


def test_older_writes_wait_for_the_newest_delivered_one() -> None:
    # The newest delivered write is waiting for its retry: the older due one must not go alone,
    # a newer never-delivered one may (an older retry does not hold back a newer write).
    assert claimable([RETRY_DUE, RETRY_WAITING], 10) == []
    assert claimable([RETRY_DUE, RETRY_WAITING, NEW], 10) == [2]
    # Once it is due, the older ones come back with it, to be coalesced into it.
    assert claimable([RETRY_DUE, RETRY_DUE, NEW], 10) == [0, 1, 2]
    assert claimable([RETRY_WAITING, RETRY_DUE], 10) == [1]


# --- the interleavings, on both journals ----------------------------------------------------


class Source:
    """A writer that logs every call, fails the first ``failures`` calls, and can be held."""

    def __init__(self, failures: int = 0) -> None:
        self.rows: dict[Any, Any] = {}
        self.calls: list[tuple[Any, bool]] = []  # (value, whether it was applied)
        self.failures_left = failures
        self.hold_value: Any = None
        self.holding = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, record: WriteRecord) -> None:
        if record.value == self.hold_value:
            self.holding.set()
            assert self.release.wait(10), "the held write was never released"
        with self.lock:
            if self.failures_left > 0:
                self.failures_left -= 1
                self.calls.append((record.value, False))
                raise ConnectionError("source down")
            self.rows[record.key] = record.value
            self.calls.append((record.value, True))


class Stalling:
    """The real journal, except that time passes after the first ``retry_later``: a flusher
    descheduled on a busy machine while it reschedules a failed group one entry at a time."""

    appends_at_risk = 0

    def __init__(self, journal: Journal, stall: Callable[[], None]) -> None:
        self._journal = journal
        self._stall: Callable[[], None] | None = stall

    def __getattr__(self, name: str) -> Any:
        return getattr(self._journal, name)

    def retry_later(self, record: WriteRecord, delay: float, error: str) -> bool:
        done = self._journal.retry_later(record, delay, error)
        stall, self._stall = self._stall, None
        if stall is not None:
            stall()
        return done


def elapse(journal: Journal, clock: ManualClock, seconds: float) -> None:
    """Let ``seconds`` pass for the journal's leases and backoff."""
    clock.advance(seconds)
    if not isinstance(journal, SqliteJournal):
        time.sleep(seconds)  # Redis counts idle time on its own clock


def drain(flusher: Flusher, journal: Journal, clock: ManualClock) -> None:
    for _ in range(50):
        if not journal.depth():
            return
        flusher.run_once()
        elapse(journal, clock, 0.05)
    raise AssertionError(f"{journal.depth()} entries left in the journal")


def test_an_older_write_never_runs_between_two_attempts_of_a_newer_one(
    make_journal: JournalFactory,
) -> None:
    """The reported failure: [('k', 2), ('k', 1), ('k', 2)] on a busy machine."""
    clock = ManualClock()
    journal = make_journal(clock=clock)
    source = Source(failures=1)
    stalling: Journal = Stalling(journal, lambda: elapse(journal, clock, 1.0))
    flusher = Flusher(stalling, source, consumer="f1", backoff=0.5, claim_idle=5)
    journal.append("ns", "k", None, 1)
    journal.append("ns", "k", None, 2)

    # 2 fails; 1 is rescheduled (due in 0.5 s), a second passes, then 2 (due 0.5 s later).
    assert flusher.run_once().retried == 2
    # 1 is due and 2 is not: 1 must wait for 2 instead of being applied on its own.
    assert flusher.run_once().claimed == 0
    elapse(journal, clock, 0.6)
    assert flusher.run_once().applied == 1

    assert source.calls == [(2, False), (2, True)]
    assert source.rows == {"k": 2}
    assert journal.depth() == 0


@pytest.mark.parametrize("comes_back", ["after its retry", "after its lease lapsed"])
def test_a_smaller_batch_takes_the_newest_write_of_a_key_first(
    make_journal: JournalFactory, comes_back: str
) -> None:
    clock = ManualClock()
    journal = make_journal(clock=clock)
    source = Source(failures=1)
    narrow = Flusher(journal, source, consumer="narrow", backoff=0.2, claim_idle=0.2, batch_size=1)
    journal.append("ns", "k", None, 1)
    journal.append("ns", "k", None, 2)
    if comes_back == "after its retry":
        wide = Flusher(journal, source, consumer="wide", backoff=0.2, claim_idle=5)
        assert wide.run_once().retried == 2  # 2 failed: the group is due again in 0.2 s
    else:
        # A flusher took both and hung while writing 2: its lease lapses after 0.2 s.
        assert len(journal.claim("hung", 10, 0.2)) == 2
        source.failures_left = 0
    elapse(journal, clock, 0.4)

    # A batch of one: it must be 2, never 1 after 2 was tried.
    assert narrow.run_once().applied == 1
    drain(narrow, journal, clock)

    assert [value for value, applied in source.calls if applied] == [2]
    assert source.rows == {"k": 2}


def test_an_older_retry_waits_for_a_newer_write_that_failed_after_it(
    make_journal: JournalFactory,
) -> None:
    clock = ManualClock()
    journal = make_journal(clock=clock)
    source = Source(failures=2)
    quick = Flusher(journal, source, consumer="quick", backoff=0.2, claim_idle=5)
    slow = Flusher(journal, source, consumer="slow", backoff=1.0, claim_idle=5)
    journal.append("ns", "k", None, "old")
    assert quick.run_once().retried == 1  # "old" fails, due again in 0.2 s
    journal.append("ns", "k", None, "new")
    assert slow.run_once().retried == 1  # "new" is not held back; it fails, due in 1.0 s
    elapse(journal, clock, 0.5)

    # "old" is due, "new" is not: "old" must not be applied now that "new" was tried.
    assert quick.run_once().claimed == 0
    elapse(journal, clock, 0.7)
    report = quick.run_once()

    assert (report.applied, report.coalesced) == (1, 1)
    assert source.calls == [("old", False), ("new", False), ("new", True)]
    assert source.rows == {"k": "new"}
    assert journal.depth() == 0


def test_a_newer_write_waits_while_an_older_one_is_being_written(
    make_journal: JournalFactory,
) -> None:
    clock = ManualClock()
    journal = make_journal(clock=clock)
    source = Source()
    source.hold_value = "old"
    holder = Flusher(journal, source, consumer="holder", claim_idle=30)
    other = Flusher(journal, source, consumer="other", claim_idle=30)
    journal.append("ns", "k", None, "old")
    writing = threading.Thread(target=holder.run_once)
    writing.start()
    try:
        assert source.holding.wait(10)  # "holder" is inside the writer with "old"
        journal.append("ns", "k", None, "new")
        journal.append("ns", "other", None, "x")
        # The key is leased to "holder": "other" must not write "new" under it.
        report = other.run_once()
    finally:
        source.release.set()
        writing.join(10)
    assert (report.claimed, report.applied) == (1, 1)  # only the other key
    drain(other, journal, clock)

    assert source.calls == [("x", True), ("old", True), ("new", True)]
    assert source.rows == {"k": "new", "other": "x"}


@pytest.mark.parametrize("seed", range(3))
def test_random_interleavings_keep_every_key_in_order(
    make_journal: JournalFactory, seed: int
) -> None:
    """Three flushers (batches of 1-4, different backoffs), a failing source, a flusher that
    hangs now and then, writes to four keys: no writer call ever gets an older write of a key
    than one already tried, and every key ends with its last write."""
    rng = random.Random(seed)
    clock = ManualClock()
    journal = make_journal(clock=clock)
    tried: dict[Any, str] = {}
    out_of_order: list[tuple[Any, str, str]] = []
    rows: dict[Any, Any] = {}

    def writer(record: WriteRecord) -> None:
        newest = tried.get(record.key, "")
        if record.sequence < newest:
            out_of_order.append((record.key, record.sequence, newest))
        tried[record.key] = max(newest, record.sequence)
        if rng.random() < 0.3:
            raise ConnectionError("source down")
        rows[record.key] = record.value

    flushers = [
        Flusher(
            journal,
            writer,
            consumer=f"f{number}",
            batch_size=rng.randint(1, 4),
            backoff=rng.choice([0.02, 0.05, 0.1]),
            max_backoff=0.2,
            claim_idle=0.3,
            max_attempts=1000,  # a dead letter lets an older write through, by design
        )
        for number in range(3)
    ]
    last: dict[Any, Any] = {}
    for step in range(200):
        roll = rng.random()
        if roll < 0.35:
            key = f"k{rng.randint(0, 3)}"
            journal.append("ns", key, None, step)
            last[key] = step
        elif roll < 0.8:
            rng.choice(flushers).run_once()
        elif roll < 0.83:
            # A flusher claims and hangs; it may have tried the newest write of each key.
            hung = journal.claim("hung", rng.randint(1, 3), 0.3)
            for record in hung:
                if not record.superseded:
                    tried[record.key] = max(tried.get(record.key, ""), record.sequence)
        else:
            elapse(journal, clock, rng.choice([0.01, 0.03, 0.06, 0.12]))
    for _ in range(500):
        if not journal.depth():
            break
        rng.choice(flushers).run_once()
        elapse(journal, clock, 0.05)

    assert out_of_order == []
    assert journal.depth() == 0
    assert rows == last
