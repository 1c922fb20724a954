"""The flusher: applies journalled writes to the source through the user's writer.

Delivery is **at-least-once**. A flusher killed after the writer committed but before the
journal heard of it leaves the entry leased; once the lease lapses (``claim_idle``) another
flusher, or the restarted one, is handed the same entry again. So the writer receives
``record.idempotency_key`` and ``record.sequence`` and must make a repeat harmless, typically
in the transaction that applies the write:

- record the idempotency key in a table whose primary key refuses it twice, and skip the write
  when it is already there ("applied twice in effect" never happens); and
- write only if newer: ``UPDATE ... SET value = :value, version = :sequence WHERE version <
  :sequence`` (sequences are fixed-width digits of one journal: compare them as strings in
  byte order, e.g. ``COLLATE "C"`` in PostgreSQL). This is what keeps an older write from
  landing after a newer one when a flusher dies between the writer and the journal, or when
  several flushers run at once; the rules below cannot, since the source and the journal do
  not commit together.

Coalescing and order, per key (namespace, key, scope):

1. In a claimed batch only the newest write of a key (highest sequence) is given to the
   writer. When it succeeds, it and the older ones are removed together (``complete``); the
   older ones count as *coalesced* and are never applied.
2. An applied write supersedes every older write of its key still in the journal, wherever it
   waits (a retry's backoff, a dead flusher's lease): the journal removes them (SQLite) or
   marks them so that their next claim acknowledges them unapplied (Redis). So a newer write
   is never followed by an older one, and an older write pending retry does not hold back a
   newer one.
3. When the newest write fails, the whole group is rescheduled with the newest's backoff;
   none of it is dropped. After ``max_attempts`` deliveries of the newest the group goes to
   the dead letters, the newest with the error, the older ones with "superseded by
   <sequence>, which failed: <error>". A dead-lettered write supersedes nothing: an older
   write of the key that comes back later is applied.
4. The group comes back together because the journal decides claims per key, not per entry
   (``ordering``): nothing of a key while one of its writes is leased, no older write without
   the newest one a writer already saw, the newest first when the batch is full. Equal delays
   alone would not do: the entries are rescheduled one by one, so they fall due apart, and an
   older write would then run between two attempts of a newer one.

Backoff after the n-th failed delivery: ``min(max_backoff, backoff * 2 ** (n - 1))`` seconds
(on Redis also at most ``claim_idle``: a retry is a lease set to lapse after the delay).
Logs name the namespace, sequence and idempotency key, never the key or the value: those may
be personal data.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from steadycache.errors import ConfigurationError, UsageError
from steadycache.write_behind.journal import Journal
from steadycache.write_behind.records import WriteRecord, record_identity

__all__ = ["FlushReport", "Flusher", "FlusherMetrics", "Writer"]

logger = logging.getLogger("steadycache")

#: Applies one write to the source of truth; raises to have it retried.
Writer = Callable[[WriteRecord], object]

_COUNTERS: Final = (
    "claimed",
    "applied",
    "coalesced",
    "retried",
    "dead_lettered",
    "claimed_from_others",
    "writer_errors",
)


@dataclass(frozen=True, slots=True)
class FlushReport:
    """What one :meth:`Flusher.run_once` did (records, except ``applied``/``writer_errors``)."""

    claimed: int = 0
    #: Writer calls that succeeded (one per coalesced group).
    applied: int = 0
    coalesced: int = 0
    retried: int = 0
    dead_lettered: int = 0
    claimed_from_others: int = 0
    #: Writer calls that raised.
    writer_errors: int = 0


@dataclass(frozen=True, slots=True)
class FlusherMetrics:
    """Queue depth, flush lag and the counters since the flusher was made."""

    depth: int
    lag: float
    claimed: int
    applied: int
    coalesced: int
    retried: int
    dead_lettered: int
    claimed_from_others: int
    writer_errors: int
    #: run_once calls of the background thread that failed on the journal itself.
    journal_errors: int
    appends_at_risk: int


class Flusher:
    """Claims batches from a journal and applies them with retries, backoff and coalescing."""

    def __init__(
        self,
        journal: Journal,
        writer: Writer,
        *,
        consumer: str,
        max_attempts: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        claim_idle: float = 30.0,
        batch_size: int = 100,
        poll_interval: float = 0.2,
    ) -> None:
        if not consumer:
            raise UsageError("a Flusher needs a consumer name, unique among live flushers")
        if isinstance(max_attempts, bool) or max_attempts < 1:
            raise ConfigurationError("pattern", f"max_attempts must be >= 1, got {max_attempts}")
        if batch_size < 1:
            raise ConfigurationError("pattern", f"batch_size must be >= 1, got {batch_size}")
        for name, seconds in (
            ("backoff", backoff),
            ("max_backoff", max_backoff),
            ("claim_idle", claim_idle),
            ("poll_interval", poll_interval),
        ):
            if not seconds > 0:
                raise ConfigurationError("pattern", f"{name} must be positive, got {seconds}")
        self.journal = journal
        self.consumer = consumer
        self._writer = writer
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._claim_idle = claim_idle
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._totals = dict.fromkeys(_COUNTERS, 0)
        self._journal_errors = 0
        self._counter_lock = threading.Lock()
        self._run_lock = threading.Lock()  # one batch at a time per flusher
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def backoff_for(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed delivery."""
        return min(self._max_backoff, self._backoff * 2.0 ** max(0, attempts - 1))

    def run_once(self) -> FlushReport:
        """Claim one batch and settle every record in it. Journal errors propagate."""
        with self._run_lock:
            counts = dict.fromkeys(_COUNTERS, 0)
            try:
                self._run_batch(counts)
            finally:
                # Also when the journal failed mid-batch: what was applied stays counted.
                with self._counter_lock:
                    for name, value in counts.items():
                        self._totals[name] += value
            return FlushReport(**counts)

    def _run_batch(self, counts: dict[str, int]) -> None:
        records = self.journal.claim(self.consumer, self._batch_size, self._claim_idle)
        counts["claimed"] = len(records)
        counts["claimed_from_others"] = sum(record.recovered for record in records)
        done = [record for record in records if record.superseded]
        self.journal.ack(done)
        counts["coalesced"] += len(done)

        groups: dict[str, list[WriteRecord]] = {}
        for record in records:
            if not record.superseded:
                groups.setdefault(record_identity(record), []).append(record)
        for group in groups.values():
            group.sort(key=lambda record: record.sequence)
        # In the journal order of the writes that get applied, so the source sees the batch
        # as if the surviving writes had been applied one by one.
        for group in sorted(groups.values(), key=lambda group: group[-1].sequence):
            self._settle(group, counts)

    def _settle(self, group: list[WriteRecord], counts: dict[str, int]) -> None:
        *older, newest = group
        try:
            self._writer(newest)
        except Exception as exc:
            counts["writer_errors"] += 1
            error = repr(exc)
            logger.warning(
                "write-behind writer failed: namespace=%s sequence=%s idempotency_key=%s "
                "attempt=%d/%d error=%s",
                newest.namespace,
                newest.sequence,
                newest.idempotency_key,
                newest.attempts,
                self._max_attempts,
                error,
            )
            if newest.attempts >= self._max_attempts:
                moved = [self.journal.dead_letter(newest, error)]
                for record in older:
                    reason = f"superseded by {newest.sequence}, which failed: {error}"
                    moved.append(self.journal.dead_letter(record, reason))
                counts["dead_lettered"] += sum(moved)
                logger.error(
                    "write-behind: namespace=%s sequence=%s moved to the dead letters after "
                    "%d attempts: %s",
                    newest.namespace,
                    newest.sequence,
                    newest.attempts,
                    error,
                )
            else:
                delay = self.backoff_for(newest.attempts)
                counts["retried"] += sum(
                    self.journal.retry_later(record, delay, error) for record in group
                )
            return
        counts["applied"] += 1
        counts["coalesced"] += self.journal.complete(newest, older)

    # -- background thread --

    def start(self) -> None:
        """Run batches on a daemon thread until :meth:`stop`."""
        if self._thread is not None and self._thread.is_alive():
            raise UsageError(f"flusher {self.consumer!r} is already running")
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, name=f"steadycache-flusher-{self.consumer}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Ask the thread to stop after its current batch; whether it stopped within timeout."""
        self._stop.set()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                report = self.run_once()
            except Exception:
                # The journal is unreachable: count, log, try again; entries stay leased or
                # waiting and will be claimed again, nothing is lost by waiting.
                with self._counter_lock:
                    self._journal_errors += 1
                logger.exception("write-behind flusher %r: journal failed", self.consumer)
                self._stop.wait(self._poll_interval)
                continue
            if report.claimed < self._batch_size:
                self._stop.wait(self._poll_interval)

    def metrics(self) -> FlusherMetrics:
        """Depth and lag read from the journal now, and the counters so far."""
        depth, lag = self.journal.depth(), self.journal.lag()
        with self._counter_lock:
            totals = dict(self._totals)
            journal_errors = self._journal_errors
        return FlusherMetrics(
            depth=depth,
            lag=lag,
            journal_errors=journal_errors,
            appends_at_risk=self.journal.appends_at_risk,
            **totals,
        )
