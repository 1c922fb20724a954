"""The asyncio flavours of the origin limiter, timeouts, refresh-ahead and warm-up."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from steadycache import AsyncCache, LoadTimeoutError, OriginOverloaded, Policy, Stampede, Ttl
from steadycache.policy import (
    HotKeyWarmUp,
    LoaderTimeouts,
    OriginLimit,
    RefreshAhead,
    StaleIfError,
)


async def test_origin_limit_bounds_concurrent_loads() -> None:
    async with AsyncCache() as cache:
        ns = cache.namespace(
            "db", Policy(stampede=Stampede(origin_limit=OriginLimit(max_concurrent=3)))
        )
        running = peak = 0

        async def load() -> int:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1
            return 1

        await asyncio.gather(*[ns.get_or_load(f"k{i}", load) for i in range(30)])
        assert peak == 3


async def test_origin_saturation_fails_fast() -> None:
    async with AsyncCache() as cache:
        ns = cache.namespace(
            "db",
            Policy(
                stampede=Stampede(origin_limit=OriginLimit(max_concurrent=1, queue_timeout=0.02))
            ),
        )
        release = asyncio.Event()

        async def hold() -> bool:
            await release.wait()
            return True

        async def quick() -> int:
            return 1

        holder = asyncio.ensure_future(ns.get_or_load("a", hold))
        await asyncio.sleep(0.01)
        with pytest.raises(OriginOverloaded):
            await ns.get_or_load("b", quick)
        release.set()
        await holder
        assert ns.stats().origin_rejections == 1


async def test_soft_and_hard_timeouts() -> None:
    async with AsyncCache() as cache:
        ns = cache.namespace(
            "t",
            Policy(
                invalidation=Ttl(0.05, jitter=0),
                stampede=Stampede(
                    timeouts=LoaderTimeouts(soft=0.02, hard=0.2),
                    stale_if_error=StaleIfError(10),
                    early_refresh=None,
                ),
            ),
        )

        async def v(value: str, delay: float) -> str:
            await asyncio.sleep(delay)
            return value

        await ns.get_or_load("k", lambda: v("v1", 0))
        await asyncio.sleep(0.06)
        started = time.monotonic()
        assert await ns.get_or_load("k", lambda: v("v2", 0.1)) == "v1"
        assert time.monotonic() - started < 0.09
        await asyncio.sleep(0.15)
        entry = await ns.get_entry("k")
        assert entry is not None
        assert entry.value == "v2"
        with pytest.raises(LoadTimeoutError):
            await ns.get_or_load("other", lambda: v("x", 1.0))


async def test_refresh_ahead_task_keeps_hot_key_fresh() -> None:
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
        loads = 0

        async def load() -> int:
            nonlocal loads
            loads += 1
            await asyncio.sleep(0.01)
            return loads

        await ns.get_or_load("k", load)
        deadline = time.monotonic() + 1.2
        while time.monotonic() < deadline:
            await ns.get_or_load("k", load)
            await asyncio.sleep(0.01)
        stats = ns.stats()
        assert stats.misses == 1
        assert stats.refresh_ahead >= 3


async def test_async_warm_from_snapshot(tmp_path: Path) -> None:
    path = str(tmp_path / "hot.json")
    policy = Policy(warm_up=HotKeyWarmUp(top_k=3, snapshot_path=path))

    async def value(x: int) -> int:
        return x

    async with AsyncCache() as first:
        ns = first.namespace("w", policy)
        for i in range(30):
            await ns.get_or_load(i % 3, lambda i=i: value(i % 3))  # type: ignore[misc]
    async with AsyncCache() as second:
        ns = second.namespace("w", policy)
        report = await ns.warm(loader_for=lambda key, scope: lambda: value(key))  # type: ignore[arg-type]
        assert report.loaded == 3
        assert await second.readiness.wait_async(1)
        assert await ns.get(1) == 1
