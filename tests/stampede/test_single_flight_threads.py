from __future__ import annotations

import threading
import time

import pytest

from steadycache import (
    Cache,
    LoaderError,
    LoadTimeoutError,
    Policy,
    SingleFlight,
    StaleIfError,
    Stampede,
    Ttl,
)
from tests.conftest import ManualClock


def burst(n: int, action: object) -> list[object]:
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = action()  # type: ignore[operator]
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_misses_run_the_loader_once() -> None:
    with Cache() as cache:
        ns = cache.namespace("sf")
        calls = 0
        lock = threading.Lock()

        def load() -> int:
            nonlocal calls
            with lock:
                calls += 1
            time.sleep(0.05)
            return 5

        results = burst(200, lambda: ns.get_or_load("hot", load))
        assert results == [5] * 200
        assert calls == 1
        assert ns.stats().coalesced == 199


def test_loader_error_reaches_every_waiter() -> None:
    with Cache() as cache:
        ns = cache.namespace("sf")
        calls = 0

        def broken() -> int:
            nonlocal calls
            calls += 1
            time.sleep(0.05)
            raise ConnectionError("db down")

        results = burst(100, lambda: ns.get_or_load("hot", broken))
        assert calls == 1
        assert all(isinstance(r, LoaderError) for r in results)
        assert all(isinstance(getattr(r, "__cause__", None), ConnectionError) for r in results)
        # Distinct exception objects: tracebacks of different threads don't mix.
        assert len({id(r) for r in results}) == 100


def test_waiters_get_stale_on_error_within_bound(clock: ManualClock) -> None:
    with Cache(clock=clock) as cache:
        ns = cache.namespace(
            "sf",
            Policy(
                invalidation=Ttl(10, jitter=0),
                stampede=Stampede(stale_if_error=StaleIfError(60), early_refresh=None),
            ),
        )
        ns.get_or_load("hot", lambda: "old")
        clock.advance(11)
        calls = 0

        def broken() -> str:
            nonlocal calls
            calls += 1
            time.sleep(0.05)
            raise ConnectionError("db down")

        results = burst(100, lambda: ns.get_or_load("hot", broken))
        assert calls == 1
        assert results == ["old"] * 100


def test_bounded_wait(clock: ManualClock) -> None:
    with Cache(clock=clock) as cache:
        ns = cache.namespace(
            "sf", Policy(stampede=Stampede(single_flight=SingleFlight(wait_timeout=0.05)))
        )
        release = threading.Event()

        def slow() -> int:
            release.wait(5)
            return 1

        leader = threading.Thread(target=lambda: ns.get_or_load("k", slow))
        leader.start()
        time.sleep(0.02)
        with pytest.raises(LoadTimeoutError, match="wait_timeout"):
            ns.get_or_load("k", slow)
        release.set()
        leader.join()
        assert ns.stats().wait_timeouts == 1


def test_without_single_flight_every_miss_loads() -> None:
    with Cache() as cache:
        ns = cache.namespace(
            "nosf", Policy(stampede=Stampede(single_flight=None, early_refresh=None))
        )
        calls = 0
        lock = threading.Lock()

        def load() -> int:
            nonlocal calls
            with lock:
                calls += 1
            time.sleep(0.05)
            return 1

        burst(50, lambda: ns.get_or_load("hot", load))
        assert calls == 50


def test_a_load_that_lands_between_read_and_flight_is_not_repeated() -> None:
    # A reader saw a miss; before it joined a flight, another caller's load landed and its
    # flight ended. The reader must use that value, not load a second time.
    with Cache() as cache:
        ns = cache.namespace("sf")
        stored = ns.stored_key("k")
        assert ns.get_entry("k") is None  # the late reader's view
        ns.get_or_load("k", lambda: "first")  # someone else's load lands
        calls = 0

        def second() -> str:
            nonlocal calls
            calls += 1
            return "second"

        assert ns._load(stored, second, None, None, ()) == "first"
        assert calls == 0
