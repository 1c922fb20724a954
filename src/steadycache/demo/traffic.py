"""The demo's traffic: a request function per scenario, the spike, and the steady load.

Shared by the in-process runner and by each worker process of a fleet run, so a request
is the same code path whether one process serves the spike or several do.
"""

from __future__ import annotations

import gc
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from steadycache import Namespace
from steadycache.demo.clock import CompressedClock
from steadycache.demo.database import BookingDatabase
from steadycache.demo.metrics import Recorder
from steadycache.demo.scenarios import Scenario

Request = Callable[[int], Any]


def request_for(ns: Namespace, db: BookingDatabase, scenario: Scenario) -> Request:
    """How the application reads one workshop's availability under ``scenario``."""
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


def counter(ns: Namespace, *names: str) -> int:
    """The sum of the namespace's counters ``names`` (missing ones count 0)."""
    counters = ns.stats().counters
    return int(sum(counters.get(name, 0) for name in names))


def fill_in_waves(request: Request, keys: list[int], wave: int) -> None:
    """Read every key through the cache, ``wave`` at a time (no more than the pool holds).

    A fill that queues for pool connections would make each load look slower than the
    query is (the wait is inside the loader), and early refresh would act on that.
    """
    for start in range(0, len(keys), wave):
        run_concurrently(request, keys[start : start + wave], Recorder())


def run_concurrently(request: Request, keys: list[int], recorder: Recorder) -> None:
    """One request per key, all released at once; returns when every one answered."""
    burst = Burst(request, keys, recorder)
    burst.prepare()
    burst.release_and_join()


class Burst:
    """Requests on their own threads, each parked at its own gate and released at once.

    One gate (a held lock) per thread, not a shared ``threading.Barrier``: a barrier wakes
    its 500 waiters through one condition lock they must each take in turn, which spreads
    the release over a hundred milliseconds or more, longer than a load takes, and the
    spike's later requests then find the key reloaded. Opening 500 private locks wakes
    every thread at once; each needs only the GIL for the few microseconds of its ``get``.
    """

    def __init__(self, request: Request, keys: list[int], recorder: Recorder) -> None:
        self._request = request
        self._keys = keys
        #: Where the spike's requests are counted.
        self.recorder = recorder
        self._gates = [threading.Lock() for _ in keys]
        self._parked = threading.Semaphore(0)
        self._latencies: list[float] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        #: ``time.perf_counter()`` when the last request answered (the spike's end).
        self.last_answer = 0.0

    def prepare(self) -> None:
        """Start the threads; returns once every one is parked at its gate."""
        for gate in self._gates:
            gate.acquire()
        self._threads = [
            threading.Thread(target=self._one, args=(key, gate), daemon=True)
            for key, gate in zip(self._keys, self._gates, strict=True)
        ]
        for thread in self._threads:
            thread.start()
        for _ in self._threads:
            self._parked.acquire()

    def release_and_join(self) -> list[float]:
        """Let every request go at once; their latencies in milliseconds.

        The garbage collector is off meanwhile (as ``timeit`` does): in a process with a
        large heap, one full collection in the middle of the spike stops every request
        thread while the database keeps real time, and the spike is then no spike.
        """
        collecting = gc.isenabled()
        gc.disable()
        try:
            for gate in self._gates:
                gate.release()
            for thread in self._threads:
                thread.join()
        finally:
            if collecting:
                gc.enable()
        return self._latencies

    def _one(self, key: int, gate: threading.Lock) -> None:
        self._parked.release()
        gate.acquire()
        # Latency from when this request's thread starts it: time the 500 threads spend
        # queueing for 2 CPU cores before they run is the demo's, not the cache's.
        started = time.perf_counter()
        failed = False
        try:
            self._request(key)
        except Exception:  # pool timeouts, LoaderError, OriginOverloaded: all count
            failed = True
        answered = time.perf_counter()
        self.recorder.request_done(failed=failed)
        with self._lock:
            self._latencies.append((answered - started) * 1000.0)
            self.last_answer = max(self.last_answer, answered)


class SteadyTraffic:
    """Light open-loop traffic over the hot keys until ``stop()`` or ``clock`` reads ``until``.

    ``per_simulated_second`` is the total rate (all threads); a fleet worker passes its
    share of the fleet's rate, so the database sees the same steady load in total.
    ``until`` is the hot keys' expiry: no steady request starts after it, so a spike that
    a busy machine releases late still finds the keys expired, not reloaded by the steady
    traffic in the meantime (the incident is the spike's, on every machine).
    """

    def __init__(
        self,
        request: Request,
        keys: list[int],
        *,
        per_simulated_second: float,
        speed: float,
        threads: int,
        seed: int,
        recorder: Recorder,
        clock: Callable[[], float],
        until: float,
    ) -> None:
        self._request = request
        self._keys = keys
        self._recorder = recorder
        self._stop = threading.Event()
        self._clock = clock
        self._until = until
        self._interval = threads / (per_simulated_second * speed)
        self._threads = [
            threading.Thread(target=self._loop, args=(seed + index,), daemon=True)
            for index in range(threads)
        ]
        self._count_lock = threading.Lock()
        self.requests = 0

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Wake and end every thread now (one waiting for its next request, too)."""
        self._stop.set()

    def join(self) -> None:
        for thread in self._threads:
            thread.join()

    def _loop(self, seed: int) -> None:
        rng = random.Random(seed)
        due = time.perf_counter()
        sent = 0
        while not self._stop.is_set() and self._clock() < self._until:
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


def steady_then_spike(
    clock: CompressedClock, steady: SteadyTraffic, burst: Burst, burst_at: float
) -> tuple[list[float], float]:
    """Steady traffic until the spike at clock reading ``burst_at``, then the spike.

    Returns the spike's latencies and the clock reading when its last request answered:
    the scenario's end. The recorder's window closes there, so what the cache's maintenance
    loads while 500 threads are joined is not counted as the spike's.
    """
    steady.start()
    clock.sleep_until(burst_at)
    steady.stop()
    latencies = burst.release_and_join()
    steady.join()
    burst.recorder.close_window(burst.last_answer)
    return latencies, clock.reading_at(burst.last_answer)
