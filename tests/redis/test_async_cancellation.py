"""A leased load whose task is cancelled gives its lease back (asyncio only: threads are
not cancelled, so this test has no generated sync twin)."""

from __future__ import annotations

import asyncio
import time

import redis

from steadycache import AsyncCache, AsyncRedisBackend
from tests.concurrency import returning_async
from tests.redis.helpers import shared_policy


async def test_a_cancelled_load_releases_its_lease(standalone_url: str) -> None:
    loading = asyncio.Event()

    async def slow() -> object:
        loading.set()
        await asyncio.sleep(30)
        return "never"

    async with (
        AsyncCache(redis=AsyncRedisBackend(standalone_url)) as first,
        AsyncCache(redis=AsyncRedisBackend(standalone_url)) as second,
    ):
        a = first.namespace("n", shared_policy())
        task = asyncio.create_task(a.get_or_load("k", slow))
        await asyncio.wait_for(loading.wait(), 5)
        with redis.Redis.from_url(standalone_url) as client:
            assert list(client.scan_iter(match="sc:lease:*")) != []
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            assert list(client.scan_iter(match="sc:lease:*")) == []
        started = time.monotonic()
        b = second.namespace("n", shared_policy())
        assert await b.get_or_load("k", returning_async("loaded by b")) == "loaded by b"
        assert time.monotonic() - started < 0.5  # nobody waited for a dead lease
