"""One worker process of a fleet run: its own pool, its own Cache, the shared Redis tier.

The parent (``fleet.py``) starts the workers and steps them through the scenario over a
pipe, so every phase starts together across processes:

    worker -> ("ready",)               database pool open, modules imported
    parent -> ("start", epoch)         the shared clock's Unix start
    worker -> ("primed", last_write, warm)
    parent -> ("go", burst_at)         the simulated instant the spike arrives
    worker -> ("done", WorkerOutcome)  or ("failed", traceback) at any point

A worker does what one process of the single-process demo does, with its share of the
spike and of the steady traffic.
"""

from __future__ import annotations

import contextlib
import logging
import random
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from steadycache import Cache, Namespace
from steadycache.demo.clock import CompressedClock
from steadycache.demo.database import BookingDatabase
from steadycache.demo.metrics import EventKind, FleetGauge, Recorder
from steadycache.demo.redis_tier import shared_policy
from steadycache.demo.runner import PRIMING_WAVE, DemoConfig
from steadycache.demo.scenarios import select
from steadycache.demo.traffic import (
    Burst,
    SteadyTraffic,
    counter,
    fill_in_waves,
    request_for,
    steady_then_spike,
)
from steadycache.stores.redis_backend import RedisBackend

#: A worker waits this long (real seconds) for the backplane subscription before priming:
#: an invalidation published before it subscribes would never reach its L1.
_SUBSCRIBE_TIMEOUT = 5.0


@dataclass(frozen=True)
class WorkerPlan:
    """What one worker runs: everything picklable, the scenario by name."""

    scenario: str
    config: DemoConfig
    db_url: str
    #: The PostgreSQL schema the parent seeded (None on SQLite).
    db_schema: str | None
    redis_url: str
    key_prefix: str
    index: int
    workers: int

    def share(self, keys: list[int]) -> list[int]:
        """This worker's slice of a list the fleet splits (every ``workers``-th item)."""
        return keys[self.index :: self.workers]


@dataclass(frozen=True)
class WarmOutcome:
    """One worker's ``warm()`` report."""

    requested: int
    loaded: int
    failed: int
    seconds: float


@dataclass(frozen=True)
class WorkerOutcome:
    """One worker's counts, latencies and timeline (simulated seconds since start)."""

    db_queries: int
    pool_timeouts: int
    errors: int
    latencies: list[float]
    waited: int
    stale: int
    steady_requests: int
    started_at: float
    ended_at: float
    timeline: list[tuple[float, EventKind]]


def run_worker(plan: WorkerPlan, conn: Connection, gauge: FleetGauge) -> None:
    """Process entry point: run the plan, report to the parent, never raise."""
    # The incident logs a warning per failed load in every worker; the parent reports
    # counts instead, as the single-process demo does (this process has no handlers).
    logging.getLogger("steadycache").addHandler(logging.NullHandler())
    try:
        _Worker(plan, conn, gauge).run()
    except BaseException:
        # OSError: the parent already gave up on this scenario and closed its end.
        with contextlib.suppress(OSError):
            conn.send(("failed", f"worker {plan.index}: {traceback.format_exc()}"))
    finally:
        conn.close()


class _Worker:
    def __init__(self, plan: WorkerPlan, conn: Connection, gauge: FleetGauge) -> None:
        self.plan = plan
        self.conn = conn
        self.gauge = gauge
        (self.scenario,) = select([plan.scenario])
        config = plan.config
        self.db = BookingDatabase(
            plan.db_url,
            workshops=config.workshops,
            bookings=config.bookings,
            seed=False,
            schema=plan.db_schema,
        )
        self.priming = Recorder()
        self.recorder = Recorder(gauge=gauge)

    def _receive(self, expected: str) -> Any:
        message = self.conn.recv()
        if message[0] != expected:
            raise RuntimeError(f"expected {expected!r} from the parent, got {message!r}")
        return message[1]

    def run(self) -> None:
        try:
            self.conn.send(("ready",))
            epoch = self._receive("start")
            config = self.plan.config
            speed = config.cold_speed if self.scenario.cold else config.speed
            clock = CompressedClock.joining(speed, epoch)
            backend = RedisBackend(self.plan.redis_url, key_prefix=self.plan.key_prefix)
            cache = Cache(
                clock=clock,
                random=random.Random(config.seed + self.plan.index).random,
                redis=backend,
            )
            try:
                ns = cache.namespace("availability", shared_policy(self.scenario.policy()))
                cache.start()
                assert cache.backplane is not None
                cache.backplane.wait_subscribed(_SUBSCRIBE_TIMEOUT)
                if self.scenario.cold:
                    outcome = self._cold(ns, cache, clock)
                else:
                    outcome = self._expiry(ns, clock)
            finally:
                cache.close()
        finally:
            self.db.close()
        self.conn.send(("done", outcome))

    def _expiry(self, ns: Namespace, clock: CompressedClock) -> WorkerOutcome:
        plan, config, scenario = self.plan, self.plan.config, self.scenario
        db = self.db
        db.reset(self.priming)
        request = request_for(ns, db, scenario)
        keys = list(range(1, config.hot_keys + 1))
        last_write = self._prime(ns, request, keys)
        burst_keys = [keys[index % len(keys)] for index in range(config.burst)]
        burst = Burst(request, plan.share(burst_keys), self.recorder)
        # Parked at the barrier before the parent is told "primed": starting threads
        # takes real time, and the spike must not be late for the expiry.
        burst.prepare()
        self.conn.send(("primed", last_write, None))
        burst_at = self._receive("go")

        db.reset(self.recorder)
        misses_before = counter(ns, "misses")
        stale_before = counter(ns, "stale_served", "stale_served_on_error")
        started_at = clock()
        steady = SteadyTraffic(
            request,
            keys,
            per_simulated_second=config.steady_per_key * len(keys) / plan.workers,
            speed=config.speed,
            threads=config.steady_threads,
            seed=config.seed + 100 * plan.index,
            recorder=self.recorder,
            clock=clock,
            until=burst_at - config.burst_delay,
        )
        latencies, ended_at = steady_then_spike(clock, steady, burst, burst_at)
        return self._outcome(
            clock,
            latencies,
            started_at=started_at,
            ended_at=ended_at,
            waited=counter(ns, "misses") - misses_before,
            stale=counter(ns, "stale_served", "stale_served_on_error") - stale_before,
            steady_requests=steady.requests,
            events=[*self.priming.events, *self.recorder.events],
        )

    def _prime(self, ns: Namespace, request: Any, keys: list[int]) -> float | None:
        """Fill the shared tier; the last write's time, or None if this worker wrote none."""
        if self.scenario.style == "cache_aside":
            # The incident's fill job ran once for the fleet, not once per process.
            if self.plan.index != 0:
                return None
            ns.set_many({key: self.db.availability(key) for key in keys})
        else:
            # Every worker asks for every key, as a fleet restarting together would (the
            # leases let one process per key load it), a few at a time for the reason the
            # in-process fill gives (runner._prime).
            fill_in_waves(request, keys, PRIMING_WAVE)
        written = [ns.get_entry(key) for key in keys]
        return max(entry.stored_at for entry in written if entry is not None)

    def _cold(self, ns: Namespace, cache: Cache, clock: CompressedClock) -> WorkerOutcome:
        plan, config, scenario = self.plan, self.plan.config, self.scenario
        db = self.db
        db.reset(self.recorder)
        request = request_for(ns, db, scenario)
        keys = list(range(1, config.cold_keys + 1))
        warm = None
        started_at = clock()
        if scenario.warm:
            # Every instance of a deploying fleet warms the same keys; leases turn that
            # into one load per key fleet-wide, the others find the value in Redis.
            report = ns.warm(
                [(key, _loader(db, key)) for key in keys], concurrency=config.warm_concurrency
            )
            cache.readiness.wait(timeout=60.0)
            warm = WarmOutcome(report.requested, report.loaded, report.failed, report.seconds)
        burst_keys = [keys[index % len(keys)] for index in range(config.burst)]
        burst = Burst(request, plan.share(burst_keys), self.recorder)
        burst.prepare()
        misses_before = counter(ns, "misses")
        self.conn.send(("primed", None, warm))
        clock.sleep_until(self._receive("go"))
        latencies = burst.release_and_join()
        return self._outcome(
            clock,
            latencies,
            started_at=started_at,
            ended_at=clock(),
            waited=counter(ns, "misses") - misses_before,
            stale=counter(ns, "stale_served", "stale_served_on_error"),
            steady_requests=0,
            events=self.recorder.events,
        )

    def _outcome(
        self,
        clock: CompressedClock,
        latencies: list[float],
        *,
        started_at: float,
        ended_at: float,
        waited: int,
        stale: int,
        steady_requests: int,
        events: list[tuple[float, EventKind]],
    ) -> WorkerOutcome:
        recorder = self.recorder
        return WorkerOutcome(
            db_queries=recorder.db_queries,
            pool_timeouts=recorder.pool_timeouts,
            errors=recorder.errors,
            latencies=latencies,
            waited=waited,
            stale=stale,
            steady_requests=steady_requests,
            started_at=clock.since_start(started_at),
            ended_at=clock.since_start(ended_at),
            # perf_counter instants are this process's: convert before they travel.
            timeline=[(clock.simulated(real), kind) for real, kind in events],
        )


def _loader(db: BookingDatabase, key: int) -> Any:
    return lambda: db.availability(key)
