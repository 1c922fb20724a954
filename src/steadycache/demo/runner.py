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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from steadycache import Cache, Namespace
from steadycache.demo.clock import CompressedClock
from steadycache.demo.database import BookingDatabase
from steadycache.demo.metrics import EventKind, Recorder, ScenarioResult, percentile
from steadycache.demo.scenarios import TTL_SECONDS, Scenario

Request = Callable[[int], Any]


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
    #: The burst arrives this many simulated seconds after the last hot key expired.
    burst_delay: float = 0.5
    #: Distinct keys the cold-deploy spike asks for (a catalogue page, not just the top 20).
    cold_keys: int = 500
    #: Cold deploys wait for no expiry; a slower clock keeps warm() well inside one TTL.
    cold_speed: float = 5.0
    warm_concurrency: int = 4
    workshops: int = 500
    bookings: int = 80_000
    seed: int = 7


#: For tests: the same database and spike, a faster clock (about 25 s in all).
QUICK = DemoConfig(speed=40.0)


def run_scenario(
    db: BookingDatabase, scenario: Scenario, config: DemoConfig, db_query_ms: float
) -> ScenarioResult:
    """Run ``scenario`` against ``db`` and measure it."""
    if scenario.cold:
        return _run_cold(db, scenario, config, db_query_ms)
    return _run_expiry(db, scenario, config, db_query_ms)


def _request_for(ns: Namespace, db: BookingDatabase, scenario: Scenario) -> Request:
    if scenario.style == "cache_aside":

        def cache_aside(key: int) -> Any:
            # The application's own cache-aside code, as the incident's service had it.
            value = ns.get(key)
            if value is None:
                value = db.availability(key)
                ns.set(key, value)
            return value

        return cache_aside

    def read_through(key: int) -> Any:
        return ns.get_or_load(key, lambda: db.availability(key))

    return read_through


def _counter(ns: Namespace, *names: str) -> int:
    counters = ns.stats().counters
    return int(sum(counters.get(name, 0) for name in names))


def _run_expiry(
    db: BookingDatabase, scenario: Scenario, config: DemoConfig, db_query_ms: float
) -> ScenarioResult:
    priming = Recorder()
    db.reset(priming)
    clock = CompressedClock(config.speed)
    cache = Cache(clock=clock, random=random.Random(config.seed).random)
    try:
        ns = cache.namespace("availability", scenario.policy())
        request = _request_for(ns, db, scenario)
        keys = list(range(1, config.hot_keys + 1))
        _prime(ns, db, scenario, request, keys)
        written = [ns.get_entry(key) for key in keys]
        last_write = max(entry.stored_at for entry in written if entry is not None)
        burst_at = last_write + TTL_SECONDS + config.burst_delay

        recorder = Recorder()
        db.reset(recorder)
        misses_before = _counter(ns, "misses")
        stale_before = _counter(ns, "stale_served", "stale_served_on_error")
        started_at = clock()

        burst_keys = [keys[index % len(keys)] for index in range(config.burst)]
        burst = _Burst(request, burst_keys, recorder)
        # Starting 500 threads takes real time (long on a busy machine): start them now,
        # parked at the barrier, so the burst is never late for the expiry.
        burst.prepare()
        stop = threading.Event()
        steady = _SteadyTraffic(request, keys, config, recorder, stop)
        steady.start()
        clock.sleep_until(burst_at)
        stop.set()
        latencies = burst.release_and_join()
        steady.join()
        ended_at = clock()
    finally:
        cache.close()

    expiries = max(1, math.floor((ended_at - started_at) / TTL_SECONDS))
    return _result(
        scenario,
        config.hot_keys,
        recorder,
        latencies,
        db_query_ms,
        expiries=expiries,
        waited=_counter(ns, "misses") - misses_before,
        stale=_counter(ns, "stale_served", "stale_served_on_error") - stale_before,
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
        request = _request_for(ns, db, scenario)
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
        burst = _Burst(request, burst_keys, recorder)
        burst.prepare()
        misses_before = _counter(ns, "misses")
        latencies = burst.release_and_join()
    finally:
        cache.close()
    return _result(
        scenario,
        config.cold_keys,
        recorder,
        latencies,
        db_query_ms,
        expiries=1,
        waited=_counter(ns, "misses") - misses_before,
        stale=_counter(ns, "stale_served", "stale_served_on_error"),
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
    # Read-through fills through get_or_load (one concurrent wave) so the cache learns
    # each key's load cost (XFetch) and schedules its refresh (refresh-ahead). The pool
    # of 10 serialises the wave: keys land within a few simulated seconds of each other.
    _run_concurrently(request, keys, Recorder())


def _loader(db: BookingDatabase, key: int) -> Callable[[], Any]:
    return lambda: db.availability(key)


def _result(
    scenario: Scenario,
    hot_keys: int,
    recorder: Recorder,
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


def _run_concurrently(request: Request, keys: list[int], recorder: Recorder) -> None:
    burst = _Burst(request, keys, recorder)
    burst.prepare()
    burst.release_and_join()


class _Burst:
    """Requests on their own threads, held at a barrier and released at one instant."""

    def __init__(self, request: Request, keys: list[int], recorder: Recorder) -> None:
        self._request = request
        self._keys = keys
        self._recorder = recorder
        self._barrier = threading.Barrier(len(keys) + 1)
        self._latencies: list[float] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def prepare(self) -> None:
        """Start the threads; each waits at the barrier."""
        self._threads = [
            threading.Thread(target=self._one, args=(key,), daemon=True) for key in self._keys
        ]
        for thread in self._threads:
            thread.start()

    def release_and_join(self) -> list[float]:
        """Let every request go at once; their latencies in milliseconds."""
        self._barrier.wait()
        for thread in self._threads:
            thread.join()
        return self._latencies

    def _one(self, key: int) -> None:
        self._barrier.wait()
        # Latency from when this request's thread starts it: time the 500 threads spend
        # queueing for 2 CPU cores before they run is the demo's, not the cache's.
        started = time.perf_counter()
        failed = False
        try:
            self._request(key)
        except Exception:  # pool timeouts, LoaderError, OriginOverloaded: all count
            failed = True
        elapsed = (time.perf_counter() - started) * 1000.0
        self._recorder.request_done(failed=failed)
        with self._lock:
            self._latencies.append(elapsed)


class _SteadyTraffic:
    """Light open-loop traffic over the hot keys until ``stop`` is set."""

    def __init__(
        self,
        request: Request,
        keys: list[int],
        config: DemoConfig,
        recorder: Recorder,
        stop: threading.Event,
    ) -> None:
        self._request = request
        self._keys = keys
        self._recorder = recorder
        self._stop = stop
        per_real_second = config.steady_per_key * len(keys) * config.speed
        self._interval = config.steady_threads / per_real_second
        self._threads = [
            threading.Thread(target=self._loop, args=(config.seed + index,), daemon=True)
            for index in range(config.steady_threads)
        ]
        self._count_lock = threading.Lock()
        self.requests = 0

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self) -> None:
        for thread in self._threads:
            thread.join()

    def _loop(self, seed: int) -> None:
        rng = random.Random(seed)
        due = time.perf_counter()
        sent = 0
        while not self._stop.is_set():
            failed = False
            try:
                self._request(rng.choice(self._keys))
            except Exception:
                failed = True
            self._recorder.request_done(failed=failed)
            sent += 1
            # Open loop: a slow request delays this thread, not the schedule after it.
            due = max(due + self._interval, time.perf_counter() - self._interval)
            delay = due - time.perf_counter()
            if delay > 0:
                self._stop.wait(delay)
        with self._count_lock:
            self.requests += sent
