"""The flusher over both journals: coalescing, retries with backoff, dead letters, metrics."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from steadycache.errors import ConfigurationError
from steadycache.write_behind import Flusher, FlushReport, Journal, WriteRecord
from tests.write_behind.conftest import JournalFactory


class Source:
    """A writer that records what it was given and fails while told to."""

    def __init__(self) -> None:
        self.rows: dict[Any, Any] = {}
        self.calls: list[tuple[WriteRecord, float]] = []
        self.failures_left: dict[Any, int] = {}
        self.lock = threading.Lock()

    def __call__(self, record: WriteRecord) -> None:
        with self.lock:
            self.calls.append((record, time.monotonic()))
            if self.failures_left.get(record.key, 0) > 0:
                self.failures_left[record.key] -= 1
                raise ConnectionError(f"source down for {record.key}")
            self.rows[record.key] = record.value

    def applied(self) -> list[tuple[Any, Any]]:
        return [(record.key, record.value) for record, _ in self.calls]


def run_until(flusher: Flusher, done: Any, *, timeout: float = 10.0) -> list[FlushReport]:
    reports: list[FlushReport] = []
    deadline = time.monotonic() + timeout
    while not done():
        reports.append(flusher.run_once())
        if time.monotonic() > deadline:
            raise AssertionError(f"not done after {timeout}s: {reports[-3:]}")
        time.sleep(0.01)
    return reports


def test_only_the_newest_write_of_a_key_is_applied(make_journal: JournalFactory) -> None:
    journal = make_journal()
    source = Source()
    flusher = Flusher(journal, source, consumer="f1")
    journal.append("ns", "a", None, 1)
    journal.append("ns", "b", None, 1)
    journal.append("ns", "a", None, 2)
    journal.append("ns", "a", {"user": 1}, 7)  # another scope: another key
    journal.append("ns", "a", None, 3)
    journal.append("ns", "b", None, None, op="delete")

    report = flusher.run_once()

    assert report == FlushReport(claimed=6, applied=3, coalesced=3)
    assert source.applied() == [("a", 7), ("a", 3), ("b", None)]
    assert [record.op for record, _ in source.calls] == ["set", "set", "delete"]
    assert journal.depth() == 0
    assert flusher.run_once() == FlushReport()


def test_retries_back_off_then_dead_letter_with_the_error(make_journal: JournalFactory) -> None:
    journal = make_journal()
    source = Source()
    source.failures_left["k"] = 99
    flusher = Flusher(journal, source, consumer="f1", max_attempts=3, backoff=0.1, claim_idle=5)
    written = journal.append("ns", "k", None, "v")

    reports = run_until(flusher, lambda: journal.depth() == 0)

    assert len(source.calls) == 3
    assert [record.attempts for record, _ in source.calls] == [1, 2, 3]
    first, second, third = (at for _, at in source.calls)
    # Exponential: 0.1 s after the first failure, 0.2 s after the second.
    assert second - first >= 0.095
    assert third - second >= 0.195
    assert sum(r.retried for r in reports) == 2
    assert sum(r.dead_lettered for r in reports) == 1
    assert sum(r.writer_errors for r in reports) == 3
    ((dead, error),) = journal.dead_letters()
    assert (dead.sequence, dead.idempotency_key, dead.value) == (
        written.sequence,
        written.idempotency_key,
        "v",
    )
    assert error == "ConnectionError('source down for k')"
    assert dead.attempts == 3
    metrics = flusher.metrics()
    assert (metrics.depth, metrics.lag, metrics.retried, metrics.dead_lettered) == (0, 0.0, 2, 1)


def test_a_write_that_recovers_is_applied_once(make_journal: JournalFactory) -> None:
    journal = make_journal()
    source = Source()
    source.failures_left["k"] = 1
    flusher = Flusher(journal, source, consumer="f1", backoff=0.05, claim_idle=5)
    journal.append("ns", "k", None, "v")
    reports = run_until(flusher, lambda: journal.depth() == 0)
    assert source.rows == {"k": "v"}
    assert sum(r.applied for r in reports) == 1
    assert sum(r.retried for r in reports) == 1
    assert journal.dead_letters() == []


def test_a_failed_group_comes_back_together_and_dies_together(
    make_journal: JournalFactory,
) -> None:
    journal = make_journal()
    source = Source()
    source.failures_left["k"] = 99
    flusher = Flusher(journal, source, consumer="f1", max_attempts=2, backoff=0.05, claim_idle=5)
    older = journal.append("ns", "k", None, 1)
    newest = journal.append("ns", "k", None, 2)

    run_until(flusher, lambda: journal.depth() == 0)

    # Only the newest is ever tried; the older one is never applied on its own.
    assert source.applied() == [("k", 2), ("k", 2)]
    letters = {letter.record.sequence: letter.error for letter in journal.dead_letters()}
    assert letters == {
        newest.sequence: "ConnectionError('source down for k')",
        older.sequence: f"superseded by {newest.sequence}, which failed: "
        "ConnectionError('source down for k')",
    }


def test_an_older_write_pending_retry_never_lands_after_a_newer_one(
    make_journal: JournalFactory,
) -> None:
    journal = make_journal()
    source = Source()
    source.failures_left["k"] = 1
    flusher = Flusher(journal, source, consumer="f1", backoff=0.2, claim_idle=5)
    journal.append("ns", "k", None, "old")
    assert flusher.run_once().retried == 1  # "old" failed and waits 0.2 s
    journal.append("ns", "k", None, "new")
    assert flusher.run_once().applied == 1  # "new" is not held back by "old"

    reports = run_until(flusher, lambda: journal.depth() == 0)

    assert source.applied() == [("k", "old"), ("k", "new")]  # the failed call, then "new"
    assert source.rows == {"k": "new"}
    assert flusher.metrics().coalesced == 1
    assert sum(r.applied for r in reports) == 0


def test_the_background_thread_drains_the_journal(make_journal: JournalFactory) -> None:
    journal = make_journal()
    source = Source()
    flusher = Flusher(journal, source, consumer="f1", batch_size=7, poll_interval=0.02)
    flusher.start()
    try:
        for i in range(50):
            journal.append("ns", f"k{i % 10}", None, i)
        deadline = time.monotonic() + 10
        while journal.depth() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        assert flusher.stop(timeout=5)
    assert source.rows == {f"k{i}": 40 + i for i in range(10)}
    metrics = flusher.metrics()
    assert metrics.depth == 0
    assert metrics.applied + metrics.coalesced == 50
    assert metrics.journal_errors == 0


def test_a_journal_failure_in_the_thread_is_counted_not_fatal(
    make_journal: JournalFactory, caplog: pytest.LogCaptureFixture
) -> None:
    real = make_journal()
    failures = [1]

    class Flaky:
        """The real journal, except that its first claim fails as an outage would."""

        appends_at_risk = 0

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def claim(self, consumer: str, count: int, min_idle: float) -> list[WriteRecord]:
            if failures:
                failures.pop()
                raise OSError("journal unreachable")
            return real.claim(consumer, count, min_idle)

    flaky: Journal = Flaky()
    source = Source()
    real.append("ns", "k", None, 1)
    flusher = Flusher(flaky, source, consumer="f1", poll_interval=0.02)
    flusher.start()
    try:
        deadline = time.monotonic() + 5
        while real.depth() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        assert flusher.stop()
    assert source.rows == {"k": 1}
    assert flusher.metrics().journal_errors == 1
    assert "journal failed" in caplog.text


def test_backoff_doubles_and_is_capped(make_journal: JournalFactory) -> None:
    flusher = Flusher(make_journal(), Source(), consumer="f", backoff=0.5, max_backoff=3.0)
    assert [flusher.backoff_for(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize(
    "options",
    [{"max_attempts": 0}, {"batch_size": 0}, {"backoff": 0}, {"claim_idle": -1.0}],
)
def test_bad_flusher_options_are_refused(
    make_journal: JournalFactory, options: dict[str, Any]
) -> None:
    with pytest.raises(ConfigurationError):
        Flusher(make_journal(), Source(), consumer="f", **options)
