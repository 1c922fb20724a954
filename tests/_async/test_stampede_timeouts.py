"""Loader timeouts: past the soft one a stale copy answers and the late value is still
stored; past the hard one, with nothing stale, the caller gets ``LoadTimeoutError``.

Timeouts are wall-clock (the loader really runs that long); freshness uses the manual clock.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from steadycache import AsyncCache, LoadTimeoutError, Policy, StaleIfError, Stampede, Ttl
from steadycache.policy import LoaderTimeouts
from tests.concurrency import returning_async
from tests.conftest import ManualClock


async def test_soft_timeout_answers_stale_and_stores_the_late_value(clock: ManualClock) -> None:
    async with AsyncCache(clock=clock) as cache:
        ns = cache.namespace(
            "t",
            Policy(
                invalidation=Ttl(0.05, jitter=0),
                stampede=Stampede(
                    timeouts=LoaderTimeouts(soft=0.02, hard=1.0),
                    stale_if_error=StaleIfError(10),
                    early_refresh=None,
                ),
            ),
        )
        await ns.get_or_load("k", returning_async("v1"))
        clock.advance(0.06)
        started = time.monotonic()
        assert await ns.get_or_load("k", returning_async("v2", delay=0.1)) == "v1"
        assert time.monotonic() - started < 0.09
        deadline = time.monotonic() + 5.0
        while (entry := await ns.get_entry("k")) is None or entry.value != "v2":
            assert time.monotonic() < deadline, "the late value was never stored"
            await asyncio.sleep(0.01)
        assert entry is not None
        assert entry.value == "v2"
        assert ns.stats().soft_timeouts == 1


async def test_hard_timeout_raises_without_stale() -> None:
    async with AsyncCache() as cache:
        ns = cache.namespace("t", Policy(stampede=Stampede(timeouts=LoaderTimeouts(hard=0.05))))
        started = time.monotonic()
        with pytest.raises(LoadTimeoutError, match="hard timeout"):
            await ns.get_or_load("k", returning_async(None, delay=0.3))
        assert time.monotonic() - started < 0.25
        assert ns.stats().hard_timeouts == 1
