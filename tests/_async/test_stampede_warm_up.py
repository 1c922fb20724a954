"""Warm-up: hot keys snapshot at close and load on the next start, bounded in concurrency,
rate and time; readiness turns ready at the target or the deadline.

The hot-key tracker and the snapshot file have no I/O twin: tests/stampede/test_warm_up.py.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from steadycache import AsyncCache, Policy, ReadThrough, Stampede, UsageError
from steadycache.policy import HotKeyWarmUp, OriginLimit
from steadycache.stampede.readiness import Readiness
from tests.concurrency import AsyncLoader, Gauge, returning_async


async def test_readiness_waits_for_target() -> None:
    readiness = Readiness()
    assert readiness.is_ready
    readiness.expect(2)
    assert not await readiness.wait_async(0.01)
    readiness.progress(2)
    readiness.done()
    assert await readiness.wait_async(0)


async def test_hot_keys_snapshot_at_close_then_warm_on_next_start(tmp_path: Path) -> None:
    path = str(tmp_path / "hot.json")
    policy = Policy(pattern=ReadThrough(), warm_up=HotKeyWarmUp(top_k=5, snapshot_path=path))
    async with AsyncCache() as first:
        ns = first.namespace("seats", policy)
        for i in range(100):
            await ns.get_or_load(("w", i % 4), returning_async(0))  # 4 hot keys
        await ns.get_or_load(("w", 99), returning_async(99))
    assert Path(path).exists()

    loaded: list[object] = []
    async with AsyncCache() as second:
        ns = second.namespace("seats", policy)

        def loader_for(key: object, scope: object) -> AsyncLoader:
            async def load() -> object:
                loaded.append(key)
                return key[1]  # type: ignore[index]

            return load

        report = await ns.warm(loader_for=loader_for)
        assert await second.readiness.wait_async(1)
        assert report.loaded == 5
        assert {("w", i) for i in range(4)} <= set(loaded)
        before = ns.stats().loads
        assert await ns.get_or_load(("w", 2), returning_async(-1)) == 2  # warm: a hit, no load
        assert ns.stats().loads == before


async def test_warm_from_snapshot_serves_plain_gets(tmp_path: Path) -> None:
    path = str(tmp_path / "hot.json")
    policy = Policy(warm_up=HotKeyWarmUp(top_k=3, snapshot_path=path))
    async with AsyncCache() as first:
        ns = first.namespace("w", policy)
        for i in range(30):
            await ns.get_or_load(i % 3, returning_async(i % 3))
    async with AsyncCache() as second:
        ns = second.namespace("w", policy)
        report = await ns.warm(loader_for=lambda key, scope: returning_async(key))
        assert report.loaded == 3
        assert await second.readiness.wait_async(1)
        assert await ns.get(1) == 1


async def test_warm_is_bounded_by_concurrency_and_origin_limit() -> None:
    gauge = Gauge()

    async def load() -> int:
        with gauge:
            await asyncio.sleep(0.01)
        return 1

    async with AsyncCache() as cache:
        ns = cache.namespace(
            "w", Policy(stampede=Stampede(origin_limit=OriginLimit(max_concurrent=2)))
        )
        report = await ns.warm([(f"k{i}", load) for i in range(20)], concurrency=8)
        assert report.loaded == 20
        assert gauge.peak <= 2
        assert ns.stats().warmed == 20


async def test_warm_rate_limit_spaces_loads() -> None:
    async with AsyncCache() as cache:
        ns = cache.namespace("w")
        started = time.monotonic()
        report = await ns.warm([(f"k{i}", returning_async(1)) for i in range(5)], rate=50)
        assert time.monotonic() - started >= 4 / 50
        assert report.loaded == 5


async def test_warm_deadline_marks_ready_anyway() -> None:
    async with AsyncCache() as cache:
        ns = cache.namespace("w")
        report = await ns.warm(
            [(f"k{i}", returning_async(None, delay=0.05)) for i in range(10)],
            concurrency=1,
            deadline=0.08,
        )
        assert report.loaded < 10
        assert report.deadline_reached
        assert cache.readiness.is_ready


async def test_hot_keys_need_the_decision() -> None:
    async with AsyncCache() as cache:
        ns = cache.namespace("x")
        with pytest.raises(UsageError, match="HotKeyWarmUp"):
            ns.hot_keys()
