from __future__ import annotations

import threading
import time

import pytest

from steadycache import Cache, LoaderError, OriginOverloaded, Policy, StaleIfError, Stampede, Ttl
from steadycache._core.breaker import CircuitBreaker
from steadycache.policy import OriginLimit
from tests.conftest import ManualClock


def test_at_most_n_concurrent_loads_across_keys() -> None:
    with Cache() as cache:
        ns = cache.namespace(
            "db",
            Policy(stampede=Stampede(origin_limit=OriginLimit(max_concurrent=3, queue_timeout=5))),
        )
        running = peak = 0
        lock = threading.Lock()

        def load() -> int:
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            time.sleep(0.02)
            with lock:
                running -= 1
            return 1

        threads = [threading.Thread(target=ns.get_or_load, args=(f"k{i}", load)) for i in range(30)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert peak == 3
        assert ns.stats().loads == 30


def test_saturation_fails_fast_with_origin_overloaded() -> None:
    with Cache() as cache:
        ns = cache.namespace(
            "db",
            Policy(
                stampede=Stampede(origin_limit=OriginLimit(max_concurrent=1, queue_timeout=0.05))
            ),
        )
        release = threading.Event()
        holder = threading.Thread(target=ns.get_or_load, args=("a", lambda: release.wait(5)))
        holder.start()
        time.sleep(0.02)
        started = time.monotonic()
        with pytest.raises(OriginOverloaded, match="no slot freed within"):
            ns.get_or_load("b", lambda: 1)
        assert time.monotonic() - started < 1.0
        release.set()
        holder.join()
        assert ns.stats().origin_rejections == 1


def test_saturation_serves_stale_when_allowed(clock: ManualClock) -> None:
    with Cache(clock=clock) as cache:
        ns = cache.namespace(
            "db",
            Policy(
                invalidation=Ttl(10, jitter=0),
                stampede=Stampede(
                    origin_limit=OriginLimit(max_concurrent=1, queue_timeout=0.01),
                    stale_if_error=StaleIfError(60),
                ),
            ),
        )
        ns.get_or_load("b", lambda: "old")
        clock.advance(11)
        release = threading.Event()
        holder = threading.Thread(target=ns.get_or_load, args=("a", lambda: release.wait(5)))
        holder.start()
        time.sleep(0.02)
        assert ns.get_or_load("b", lambda: "new") == "old"
        release.set()
        holder.join()


def test_breaker_opens_after_consecutive_failures_and_half_opens(clock: ManualClock) -> None:
    with Cache(clock=clock) as cache:
        ns = cache.namespace(
            "db",
            Policy(
                stampede=Stampede(origin_limit=OriginLimit(breaker_failures=3, breaker_reset=30))
            ),
        )
        calls = 0

        def broken() -> int:
            nonlocal calls
            calls += 1
            raise ConnectionError("down")

        for i in range(3):
            with pytest.raises(LoaderError):
                ns.get_or_load(f"k{i}", broken)
        with pytest.raises(OriginOverloaded, match="circuit breaker open"):
            ns.get_or_load("k9", broken)
        assert calls == 3
        assert ns.stats().breaker_open == 1
        clock.advance(31)
        assert ns.get_or_load("k9", lambda: 5) == 5  # the trial succeeds: closed again
        assert ns.stats().breaker_open == 0


def test_breaker_allows_one_trial_at_a_time(clock: ManualClock) -> None:
    breaker = CircuitBreaker(threshold=1, reset=10, clock=clock)
    breaker.record(failed=True)
    assert not breaker.allow()
    clock.advance(10)
    assert breaker.allow()
    assert not breaker.allow()  # a second caller while the trial runs
    breaker.record(failed=True)
    assert not breaker.allow()  # re-opened
    clock.advance(10)
    assert breaker.allow()
    breaker.cancel_trial()
    assert breaker.allow()
