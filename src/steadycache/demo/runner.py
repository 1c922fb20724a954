"""Runs one scenario: prime the hot keys, steady traffic, then the burst after the expiry.

Timeline of an expiry scenario, in simulated seconds (the cache's clock; the database
runs in real time):

    0            the hot keys are loaded and written together (one concurrent wave)
    0 .. T+60    light steady traffic keeps them hot
    T+60+delay   500 requests arrive at once, T being when the last key was written

A cold-deploy scenario starts with an empty cache (optionally ``warm()`` first) and sends
the spike right after start-up.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from steadycache import Cache, Namespace
from steadycache.demo.clock import CompressedClock
from steadycache.demo.database import BookingDatabase
from steadycache.demo.metrics import (
    EventKind,
    FleetTotals,
    Recorder,
    ScenarioResult,
    percentile,
)
from steadycache.demo.scenarios import TTL_SECONDS, Scenario
from steadycache.demo.traffic import (
    Burst,
    Request,
    SteadyTraffic,
    counter,
    fill_in_waves,
    request_for,
    steady_then_spike,
)


@dataclass(frozen=True)
class DemoConfig:
    """Sizes and speeds of one demo run (the defaults are the documented run)."""

    hot_keys: int = 20
    burst: int = 500
    #: Simulated seconds per real second for the expiry scenarios (60 s TTL = 2 s real).
    speed: float = 30.0
    #: Steady traffic before the burst, in requests per simulated second per hot key.
    steady_per_key: float = 2.0
    steady_threads: int = 2
    #: The burst arrives this many simulated seconds after the hot keys expired. Kept tiny
    #: (1.7 ms real at 30x): with a longer gap the steady traffic's own misses reload most
    #: keys before the spike, and the incident depends on how fast this machine is.
    burst_delay: float = 0.05
    #: Distinct keys the cold-deploy spike asks for (a catalogue page, not just the top 20).
    cold_keys: int = 500
    #: Cold deploys wait for no expiry; a slower clock keeps warm() well inside one TTL.
    cold_speed: float = 2.0
    warm_concurrency: int = 8
    workshops: int = 500
    bookings: int = 200_000
    seed: int = 7


#: Keys loaded at once when a read-through scenario fills the cache.
PRIMING_WAVE = 2

#: ``--quick`` and the tests: the same 500-request spike (the pool's capacity is a count,
#: so the spike must stay well above it) and the same query (early refresh acts on its
#: cost), fewer cold-deploy keys, a faster clock and a wider warm-up (about 20 s in all
#: instead of about 30 s).
QUICK = DemoConfig(speed=40.0, cold_keys=400, warm_concurrency=10)


def run_scenario(
    db: BookingDatabase, scenario: Scenario, config: DemoConfig, db_query_ms: float
) -> ScenarioResult:
    """Run ``scenario`` against ``db`` and measure it."""
    if scenario.cold:
        return _run_cold(db, scenario, config, db_query_ms)
    return _run_expiry(db, scenario, config, db_query_ms)


def _run_expiry(
    db: BookingDatabase, scenario: Scenario, config: DemoConfig, db_query_ms: float
) -> ScenarioResult:
    priming = Recorder()
    db.reset(priming)
    clock = CompressedClock(config.speed)
    cache = Cache(clock=clock, random=random.Random(config.seed).random)
    try:
        ns = cache.namespace("availability", scenario.policy())
        request = request_for(ns, db, scenario)
        keys = list(range(1, config.hot_keys + 1))
        _prime(ns, db, scenario, request, keys)
        written = [ns.get_entry(key) for key in keys]
        last_write = max(entry.stored_at for entry in written if entry is not None)
        burst_at = last_write + TTL_SECONDS + config.burst_delay

        recorder = Recorder()
        db.reset(recorder)
        misses_before = counter(ns, "misses")
        stale_before = counter(ns, "stale_served", "stale_served_on_error")
        started_at = clock()

        burst_keys = [keys[index % len(keys)] for index in range(config.burst)]
        burst = Burst(request, burst_keys, recorder)
        # Starting 500 threads takes real time (long on a busy machine): start them now,
        # parked at the barrier, so the burst is never late for the expiry.
        burst.prepare()
        steady = SteadyTraffic(
            request,
            keys,
            per_simulated_second=config.steady_per_key * len(keys),
            speed=config.speed,
            threads=config.steady_threads,
            seed=config.seed,
            recorder=recorder,
            clock=clock,
            until=burst_at - config.burst_delay,
        )
        latencies, ended_at = steady_then_spike(clock, steady, burst, burst_at)
    finally:
        cache.close()

    expiries = max(1, math.floor((ended_at - started_at) / TTL_SECONDS))
    return scenario_result(
        scenario,
        config.hot_keys,
        recorder,
        latencies,
        db_query_ms,
        expiries=expiries,
        waited=counter(ns, "misses") - misses_before,
        stale=counter(ns, "stale_served", "stale_served_on_error") - stale_before,
        steady_requests=steady.requests,
        timeline=_timeline(clock, [*priming.events, *recorder.events]),
    )


def _run_cold(
    db: BookingDatabase, scenario: Scenario, config: DemoConfig, db_query_ms: float
) -> ScenarioResult:
    recorder = Recorder()
    db.reset(recorder)
    clock = CompressedClock(config.cold_speed)
    cache = Cache(clock=clock, random=random.Random(config.seed).random)
    notes = ""
    try:
        ns = cache.namespace("availability", scenario.policy())
        request = request_for(ns, db, scenario)
        keys = list(range(1, config.cold_keys + 1))
        if scenario.warm:
            report = ns.warm(
                [(key, _loader(db, key)) for key in keys], concurrency=config.warm_concurrency
            )
            cache.readiness.wait(timeout=60.0)
            notes = (
                f"warm(): {report.loaded}/{report.requested} keys in {report.seconds:.2f} s "
                f"real, {report.failed} failed"
            )
        burst_keys = [keys[index % len(keys)] for index in range(config.burst)]
        burst = Burst(request, burst_keys, recorder)
        burst.prepare()
        misses_before = counter(ns, "misses")
        latencies = burst.release_and_join()
    finally:
        cache.close()
    return scenario_result(
        scenario,
        config.cold_keys,
        recorder,
        latencies,
        db_query_ms,
        expiries=1,
        waited=counter(ns, "misses") - misses_before,
        stale=counter(ns, "stale_served", "stale_served_on_error"),
        steady_requests=0,
        timeline=_timeline(clock, recorder.events),
        notes=notes,
    )


def _prime(
    ns: Namespace, db: BookingDatabase, scenario: Scenario, request: Request, keys: list[int]
) -> None:
    if scenario.style == "cache_aside":
        # The incident's shape: a fill job queried every key, then wrote them all at one
        # instant with one TTL, so without jitter they all expire at one instant.
        ns.set_many({key: db.availability(key) for key in keys})
        return
    # Read-through fills through get_or_load so the cache learns each key's load cost
    # (XFetch) and schedules its refresh (refresh-ahead), two at a time: a wider wave would
    # saturate the database (``database.SATURATION``) and make each query slower, and early
    # refresh would then act on a load cost no lone refresh pays.
    fill_in_waves(request, keys, PRIMING_WAVE)


def _loader(db: BookingDatabase, key: int) -> Callable[[], Any]:
    return lambda: db.availability(key)


def scenario_result(
    scenario: Scenario,
    hot_keys: int,
    recorder: Recorder | FleetTotals,
    latencies: list[float],
    db_query_ms: float,
    *,
    expiries: int,
    waited: int,
    stale: int,
    steady_requests: int,
    timeline: tuple[tuple[float, EventKind], ...],
    notes: str = "",
) -> ScenarioResult:
    """The table's row, from one process's ``Recorder`` or a fleet's summed counters."""
    ordered = sorted(latencies)
    return ScenarioResult(
        name=scenario.name,
        title=scenario.title,
        hot_keys=hot_keys,
        requests=len(latencies),
        db_queries=recorder.db_queries,
        db_queries_per_hot_key_expiry=recorder.db_queries / (hot_keys * expiries),
        peak_db_concurrency=recorder.peak_db_concurrency,
        pool_timeouts=recorder.pool_timeouts,
        errors=recorder.errors,
        stale_served=stale,
        p50_ms=percentile(ordered, 0.50),
        p99_ms=percentile(ordered, 0.99),
        max_ms=ordered[-1] if ordered else 0.0,
        db_query_ms=db_query_ms,
        waited_for_load=waited,
        steady_requests=steady_requests,
        timeline=timeline,
        notes=notes,
    )


def _timeline(
    clock: CompressedClock, events: list[tuple[float, EventKind]]
) -> tuple[tuple[float, EventKind], ...]:
    return tuple(sorted((clock.simulated(real), kind) for real, kind in events))
