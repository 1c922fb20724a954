"""Background refreshes: refresh-ahead keeps hot keys fresh and lets cold ones expire, and a
refresh that keeps failing backs off instead of hammering the origin.

The background worker is a task of the loop here and a thread in the generated twin. The
refresh schedule itself has no I/O and no twin: tests/stampede/test_refresh_ahead.py.
"""

from __future__ import annotations

import asyncio
import time

from steadycache import AsyncCache, Policy, StaleWhileRevalidate, Stampede, Ttl
from steadycache.policy import RefreshAhead
from tests.concurrency import failing_async, returning_async, until_async
from tests.conftest import ManualClock


async def test_worker_keeps_a_hot_key_fresh_so_no_read_pays_load_latency() -> None:
    # Real time, short TTL: the worker must reload before expiry, every time.
    async with AsyncCache() as cache:
        ns = cache.namespace(
            "ra",
            Policy(
                invalidation=Ttl(0.3, jitter=0),
                stampede=Stampede(
                    refresh_ahead=RefreshAhead(at=0.5, check_interval=0.01), early_refresh=None
                ),
            ),
        )
        loads: list[int] = []

        async def load() -> int:
            loads.append(1)
            await asyncio.sleep(0.01)
            return len(loads)

        await ns.get_or_load("k", load)
        slow_reads = 0
        # Read until the worker has reloaded the key through several lifetimes (within 1.5 s).
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline and (ns.stats().refresh_ahead < 4 or len(loads) < 5):
            started = time.monotonic()
            await ns.get_or_load("k", load)
            if time.monotonic() - started >= 0.009:
                slow_reads += 1
            await asyncio.sleep(0.01)
        stats = ns.stats()
        assert slow_reads == 0
        assert stats.misses == 1  # only the very first read
        assert stats.refresh_ahead >= 4
        assert len(loads) >= 5


async def test_cold_key_is_left_to_expire(clock: ManualClock) -> None:
    async with AsyncCache(clock=clock) as cache:
        ns = cache.namespace(
            "ra",
            Policy(
                invalidation=Ttl(10, jitter=0),
                stampede=Stampede(refresh_ahead=RefreshAhead(at=0.5, hot_window=5)),
            ),
        )
        await ns.get_or_load("k", returning_async(1))
        clock.advance(20)  # never read again: cold
        await ns.maintain(clock.now)
        assert ns.stats().refresh_ahead == 0
        assert await ns.get("k") is None


async def test_key_first_written_with_set_is_refreshed_ahead(clock: ManualClock) -> None:
    async with AsyncCache(clock=clock) as cache:
        ns = cache.namespace(
            "ra",
            Policy(
                invalidation=Ttl(60, jitter=0),
                stampede=Stampede(refresh_ahead=RefreshAhead(at=0.75), early_refresh=None),
            ),
        )
        await ns.set("k", "batch")  # written by a batch job, not by a load
        clock.advance(10)
        assert await ns.get_or_load("k", returning_async("loaded")) == "batch"
        clock.advance(36)  # 46 s after the write: past 0.75 x 60 s
        await ns.maintain(clock.now)
        await cache.aclose()
        assert ns.stats().refresh_ahead == 1
        assert await ns.get("k") == "loaded"


async def test_failing_background_refresh_backs_off(clock: ManualClock) -> None:
    async with AsyncCache(clock=clock) as cache:
        ns = cache.namespace(
            "bo",
            Policy(
                invalidation=Ttl(10, jitter=0),
                stampede=Stampede(
                    stale_while_revalidate=StaleWhileRevalidate(60), early_refresh=None
                ),
            ),
        )
        await ns.get_or_load("k", returning_async("v1"))
        calls: list[int] = []
        broken = failing_async(ConnectionError("origin down"), calls)
        stored = ns.stored_key("k")

        async def read_stale() -> None:
            assert await ns.get_or_load("k", broken) == "v1"
            # Let the background refresh finish.
            await until_async(lambda: not ns._flights.in_flight(stored))

        clock.advance(11)
        for _ in range(50):  # stale reads: each would start a refresh without a backoff
            await read_stale()
        assert len(calls) == 1
        assert ns.stats().refresh_backoffs == 49
        clock.advance(0.3)  # past the first backoff (0.25 s): one more probe
        await read_stale()
        await read_stale()
        assert len(calls) == 2
