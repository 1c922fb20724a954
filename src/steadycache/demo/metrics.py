"""What one scenario measures: database gauge and counters, request latencies, timeline.

One ``Recorder`` per scenario, shared by the request threads, the cache's background
threads and the database wrapper, so every counter is updated under one lock: a peak
concurrency read without the lock could miss the very moment the pool ran dry.

A fleet run (several worker processes) keeps one ``Recorder`` per process and adds a
``FleetGauge`` in shared memory: summing per-process peaks would overstate the fleet's
peak (they need not coincide), so queries in flight are counted across processes too.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from typing import Any, Literal

EventKind = Literal["request", "db_query", "error"]


@dataclass
class Recorder:
    """Counters and a timeline of one scenario (thread-safe)."""

    db_queries: int = 0
    pool_timeouts: int = 0
    errors: int = 0
    peak_db_concurrency: int = 0
    #: ``(time.perf_counter(), kind)`` of every request end, query start and error.
    events: list[tuple[float, EventKind]] = field(default_factory=list)
    #: Fleet runs: the cross-process gauge this process's queries are also counted in.
    gauge: FleetGauge | None = None
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closed_at: float | None = None

    def close_window(self, at: float) -> None:
        """End the measured window at the ``time.perf_counter()`` instant ``at`` (when the
        spike's last request answered): later queries, such as a refresh that the cache's
        maintenance starts while the request threads are joined, belong to no scenario."""
        with self._lock:
            self._closed_at = at
            late = [event for event in self.events if event[0] > at]
            self.db_queries -= sum(1 for _, kind in late if kind == "db_query")
            self.events = [event for event in self.events if event[0] <= at]

    def query_started(self) -> None:
        """A query got a pooled connection and is now running on the database."""
        now = time.perf_counter()
        with self._lock:
            if self._closed_at is not None and now > self._closed_at:
                return
            self.db_queries += 1
            self._in_flight += 1
            self.peak_db_concurrency = max(self.peak_db_concurrency, self._in_flight)
            self.events.append((now, "db_query"))
        if self.gauge is not None:
            self.gauge.started()

    def query_finished(self) -> None:
        """A running query ended (successfully or not)."""
        if self.gauge is not None:
            self.gauge.finished()
        with self._lock:
            self._in_flight -= 1

    def pool_timed_out(self) -> None:
        """A query waited the whole pool timeout for a connection and never ran."""
        with self._lock:
            self.pool_timeouts += 1

    def request_done(self, *, failed: bool) -> None:
        """A request answered its caller (``failed``: with an error instead of a value)."""
        now = time.perf_counter()
        with self._lock:
            self.events.append((now, "request"))
            if failed:
                self.errors += 1
                self.events.append((now, "error"))


class FleetGauge:
    """Database queries in flight across worker processes, and their peak (shared memory).

    Pass it to each ``Process`` at creation (shared memory is inherited, not sent). One
    semaphore-guarded increment per query costs microseconds next to a query's
    milliseconds, so the gauge does not slow the queries it measures.
    """

    def __init__(self, context: BaseContext) -> None:
        self._lock = context.Lock()
        self._in_flight: Any = context.RawValue("i", 0)
        self._peak: Any = context.RawValue("i", 0)

    def started(self) -> None:
        with self._lock:
            self._in_flight.value += 1
            self._peak.value = max(self._peak.value, self._in_flight.value)

    def finished(self) -> None:
        with self._lock:
            self._in_flight.value -= 1

    @property
    def peak(self) -> int:
        """The most queries that ran at one moment, fleet-wide."""
        with self._lock:
            return int(self._peak.value)


@dataclass(frozen=True)
class FleetTotals:
    """A fleet's database counters: per-process counts summed, the peak from the gauge."""

    db_queries: int
    peak_db_concurrency: int
    pool_timeouts: int
    errors: int


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 for no values)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class ScenarioResult:
    """The outcome of one scenario, as the table, the JSON and the plot show it."""

    name: str
    title: str
    hot_keys: int
    requests: int
    db_queries: int
    db_queries_per_hot_key_expiry: float
    peak_db_concurrency: int
    pool_timeouts: int
    errors: int
    stale_served: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    db_query_ms: float
    #: Requests (steady and burst) that waited for a database load instead of a cached value.
    waited_for_load: int
    #: Requests of the steady traffic before the burst (not in ``requests``).
    steady_requests: int
    #: ``(simulated seconds, kind)`` timeline for the plot.
    timeline: tuple[tuple[float, EventKind], ...] = ()
    notes: str = ""

    def as_json(self) -> dict[str, object]:
        """The machine-readable fields (the schema of ``steadycache demo --json``)."""
        return {
            "name": self.name,
            "hot_keys": self.hot_keys,
            "requests": self.requests,
            "db_queries": self.db_queries,
            "db_queries_per_hot_key_expiry": round(self.db_queries_per_hot_key_expiry, 3),
            "peak_db_concurrency": self.peak_db_concurrency,
            "pool_timeouts": self.pool_timeouts,
            "errors": self.errors,
            "stale_served": self.stale_served,
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "max_ms": round(self.max_ms, 2),
            "db_query_ms": round(self.db_query_ms, 2),
        }
