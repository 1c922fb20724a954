"""The origin limiter through a namespace: a budget of concurrent loads, fail-fast when it is
spent (stale when allowed), and a circuit breaker that opens and half-opens.

The breaker's own state machine has no I/O and no twin: tests/stampede/test_origin.py.
"""

from __future__ import annotations

import asyncio
import functools
import time

import pytest

from steadycache import (
    AsyncCache,
    LoaderError,
    OriginOverloaded,
    Policy,
    StaleIfError,
    Stampede,
    Ttl,
)
from steadycache.policy import OriginLimit
from tests.concurrency import (
    AsyncBackground,
    AsyncSignal,
    Gauge,
    failing_async,
    gather_async,
    held_async,
    returning_async,
)
from tests.conftest import ManualClock


async def test_at_most_n_concurrent_loads_across_keys() -> None:
    async with AsyncCache() as cache:
        ns = cache.namespace(
            "db",
            Policy(stampede=Stampede(origin_limit=OriginLimit(max_concurrent=3, queue_timeout=5))),
        )
        gauge = Gauge()

        async def load() -> int:
            with gauge:
                await asyncio.sleep(0.02)
            return 1

        await gather_async([functools.partial(ns.get_or_load, f"k{i}", load) for i in range(30)])
        assert gauge.peak == 3
        assert ns.stats().loads == 30


async def test_saturation_fails_fast_with_origin_overloaded() -> None:
    async with AsyncCache() as cache:
        ns = cache.namespace(
            "db",
            Policy(
                stampede=Stampede(origin_limit=OriginLimit(max_concurrent=1, queue_timeout=0.05))
            ),
        )
        loading, release = AsyncSignal(), AsyncSignal()
        holder = AsyncBackground(lambda: ns.get_or_load("a", held_async(True, loading, release)))
        assert await loading.wait()
        started = time.monotonic()
        with pytest.raises(OriginOverloaded, match="no slot freed within"):
            await ns.get_or_load("b", returning_async(1))
        assert time.monotonic() - started < 1.0
        release.set()
        assert await holder.result() is True
        assert ns.stats().origin_rejections == 1


async def test_saturation_serves_stale_when_allowed(clock: ManualClock) -> None:
    async with AsyncCache(clock=clock) as cache:
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
        await ns.get_or_load("b", returning_async("old"))
        clock.advance(11)
        loading, release = AsyncSignal(), AsyncSignal()
        holder = AsyncBackground(lambda: ns.get_or_load("a", held_async(True, loading, release)))
        assert await loading.wait()
        assert await ns.get_or_load("b", returning_async("new")) == "old"
        release.set()
        await holder.result()


async def test_breaker_opens_after_consecutive_failures_and_half_opens(clock: ManualClock) -> None:
    async with AsyncCache(clock=clock) as cache:
        ns = cache.namespace(
            "db",
            Policy(
                stampede=Stampede(origin_limit=OriginLimit(breaker_failures=3, breaker_reset=30))
            ),
        )
        calls: list[int] = []
        broken = failing_async(ConnectionError("down"), calls)
        for i in range(3):
            with pytest.raises(LoaderError):
                await ns.get_or_load(f"k{i}", broken)
        with pytest.raises(OriginOverloaded, match="circuit breaker open"):
            await ns.get_or_load("k9", broken)
        assert len(calls) == 3
        assert ns.stats().breaker_open == 1
        clock.advance(31)
        assert await ns.get_or_load("k9", returning_async(5)) == 5  # the trial succeeds: closed
        assert ns.stats().breaker_open == 0
