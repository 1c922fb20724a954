"""One mode of the consistency scenario: a fresh catalogue, cache, invalidation and auditor,
replaying the schedule in simulated time on one thread.

The harness interleaves reads, writes, the outbox poller's ticks and the auditor's ticks in
time order, so a seed gives the same numbers on any machine. Every served value is compared
with the row the database holds at that instant (the ground truth), and every write is
remembered by hotel, so a stale read or a stale audit can be blamed on the path that wrote.
"""

from __future__ import annotations

import math
import random
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from steadycache import Cache, Invalidation, OnEvent, OnTableChange, Policy, ReadThrough, Ttl
from steadycache._core.entry import Entry
from steadycache.demo.consistency_events import EventTransport
from steadycache.demo.consistency_results import AuditFinding, ConsistencyConfig, ModeResult
from steadycache.demo.consistency_workload import (
    HOTEL_EVENT,
    HotelDatabase,
    Operation,
    Publish,
    Read,
    Write,
)
from steadycache.invalidation.auditor import StalenessAuditor
from steadycache.invalidation.router import EventRouter
from steadycache.invalidation.sqlite_outbox import SqliteOutboxInvalidator
from steadycache.namespace import Namespace
from steadycache.policy import Stampede

# Simulated time starts here rather than at 0: entries and versions are stamped from it.
_EPOCH: Final = 1_000_000.0


def hotel_policy(mode: str, ttl: float) -> Policy:
    """The namespace's policy in ``mode``: its triggers say who invalidates it."""
    triggers: tuple[OnEvent | OnTableChange, ...] = ()
    if mode == "events":
        triggers = (OnEvent(HOTEL_EVENT, keys=("{hotel_id}",)),)
    elif mode == "database":
        triggers = (
            OnTableChange("hotels", key_columns=("id",), keys=("{id}",)),
            OnTableChange("availability", key_columns=("hotel_id",), keys=("{hotel_id}",)),
        )
    return Policy(
        pattern=ReadThrough(),
        invalidation=Invalidation(
            ttl=Ttl(ttl), owner="catalogue team" if triggers else None, triggers=triggers
        ),
        # Early refresh reloads on a worker thread: it would make the run depend on thread
        # timing, and this scenario is about invalidation, not expiry.
        stampede=Stampede(early_refresh=None),
    )


class _SimulatedClock:
    """Simulated seconds; the harness moves it to each operation's and tick's time."""

    def __init__(self) -> None:
        self.at = 0.0

    def __call__(self) -> float:
        return _EPOCH + self.at


class _AuditTap:
    """Between the namespace and the auditor: remembers which reads were queued, in order,
    so each audit can be matched with its outcome and blamed on a write path."""

    def __init__(self, auditor: StalenessAuditor) -> None:
        self.auditor = auditor
        self.queued: deque[Any] = deque()

    def observe(self, key: object, scope: Mapping[str, object] | None, entry: Entry | None) -> bool:
        queued = self.auditor.observe(key, scope, entry)
        if queued:
            self.queued.append(key)
        return queued


class ModeRun:
    """One mode: a fresh catalogue, cache, invalidation and auditor, replaying the schedule."""

    def __init__(
        self,
        mode: str,
        config: ConsistencyConfig,
        seed: int,
        directory: Path,
        transport: EventTransport,
    ) -> None:
        self.mode = mode
        self.config = config
        self.clock = _SimulatedClock()
        self.outbox: SqliteOutboxInvalidator | None = None
        self.db = HotelDatabase(directory, config.workload, seed)
        # The same seed in every mode, so the TTL jitter and the audit sample start alike.
        self.cache = Cache(clock=self.clock, random=random.Random(f"cache-{seed}").random)
        try:
            self.hotels: Namespace = self.cache.namespace("hotels", hotel_policy(mode, config.ttl))
            self.auditor = StalenessAuditor(
                self.hotels,
                lambda key, _scope: self.db.load(key),
                sample_rate=config.sample_rate,
                grace=config.grace,
                random=random.Random(f"audit-{seed}").random,
                clock=self.clock,
            )
            self.tap = _AuditTap(self.auditor)
            self.hotels.audit_with(self.tap)
            self.router = EventRouter([self.hotels]) if mode != "ttl-only" else None
            self.publish: Publish | None = None
            if mode == "events":
                assert self.router is not None
                self.publish = transport.connect(self.router)
            if mode == "database":
                assert self.router is not None
                self.outbox = SqliteOutboxInvalidator(
                    self.db.path, self.router, poll_interval=config.poll_interval
                )
                self.outbox.install()
                self.outbox.poll_once()  # sets the cursor: changes from now on are routed
        except BaseException:
            self.close()
            raise
        # hotel id -> (path, when) of its last write; -> (when, path) of the first write
        # since it was last loaded, i.e. since when a cached copy would be wrong.
        self.last_write: dict[int, tuple[int, float]] = {}
        self.wrong_since: dict[int, tuple[float, int]] = {}
        self.writes: Counter[int] = Counter()
        self.rows: Counter[int] = Counter()
        self.reads = self.loads = self.stale_reads = 0
        self.max_stale_age = 0.0
        self.stale_by_path: Counter[int] = Counter()
        self.findings: list[AuditFinding] = []
        self._polls = self._audits = 0

    def replay(self, schedule: Sequence[Operation]) -> ModeResult:
        """Run every operation at its time, then the ticks up to the end; the results."""
        for operation in schedule:
            self._advance(operation.at)
            if isinstance(operation, Read):
                self._read(operation.hotel_id)
            else:
                self._write(operation)
        self._advance(self.config.workload.duration)
        report = self.auditor.report()
        counters = self.router.counters if self.router is not None else None
        return ModeResult(
            mode=self.mode,
            reads=self.reads,
            db_loads=self.loads,
            stale_reads=self.stale_reads,
            max_stale_age=self.max_stale_age,
            stale_reads_by_path=dict(sorted(self.stale_by_path.items())),
            invalidations=0 if counters is None else counters.keys + counters.flushes,
            audited=report.audited,
            audit_stale=report.stale,
            audit_inconclusive=report.inconclusive,
            audit_sampled=report.sampled,
            offender_keys=tuple(int(offender.key) for offender in report.offenders),
            findings=tuple(self.findings),
            offenders_dropped=self.auditor.counters.offenders_dropped,
        )

    # --- time -------------------------------------------------------------------------------

    def _advance(self, at: float) -> None:
        """Run the poller's and the auditor's ticks due by ``at``, in time order."""
        poll_every = self.config.poll_interval if self.outbox is not None else math.inf
        audit_every = self.config.audit_interval
        while True:
            # Tick times from counters, not sums, so no rounding drift; the auditor runs
            # half a period out of phase, as an unsynchronised thread would.
            next_poll = (self._polls + 1) * poll_every
            next_audit = (self._audits + 0.5) * audit_every
            if min(next_poll, next_audit) > at:
                break
            if next_poll <= next_audit:
                self.clock.at = next_poll
                self._polls += 1
                assert self.outbox is not None
                self.outbox.poll_once()
            else:
                self.clock.at = next_audit
                self._audits += 1
                self._audit_queued()
        self.clock.at = at

    # --- operations -------------------------------------------------------------------------

    def _read(self, hotel_id: int) -> None:
        served = self.hotels.get_or_load(hotel_id, lambda: self._load(hotel_id))
        self.reads += 1
        if served == self.db.current(hotel_id):
            return
        self.stale_reads += 1
        since, path = self.wrong_since[hotel_id]
        self.max_stale_age = max(self.max_stale_age, self.clock.at - since)
        self.stale_by_path[path] += 1

    def _load(self, hotel_id: int) -> object:
        self.loads += 1
        self.wrong_since.pop(hotel_id, None)  # what is loaded now is right until a write
        return self.db.load(hotel_id)

    def _write(self, write: Write) -> None:
        changed = self.db.apply(write, self.publish)
        self.writes[write.path] += 1
        self.rows[write.path] += len(changed)
        for hotel_id in changed:
            self.last_write[hotel_id] = (write.path, self.clock.at)
            self.wrong_since.setdefault(hotel_id, (self.clock.at, write.path))

    def _audit_queued(self) -> None:
        """Audit the queued reads one at a time, so each stale outcome has its key."""
        counters = self.auditor.counters
        while self.tap.queued:
            hotel_id = self.tap.queued.popleft()
            stale_before = counters.stale
            self.auditor.run_pending(max_items=1)
            if counters.stale == stale_before:
                continue
            path, written_at = self.last_write.get(hotel_id, (None, math.nan))
            entry = self.hotels.get_entry(hotel_id)
            age = self.clock() - entry.stored_at if entry is not None else math.nan
            self.findings.append(
                AuditFinding(hotel_id, path, self.clock.at - written_at, entry_age=age)
            )

    def close(self) -> None:
        """Stop the poller, close the cache and every database connection."""
        if self.outbox is not None:
            self.outbox.stop()
        self.cache.close()
        self.db.close()
