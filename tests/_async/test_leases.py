"""Fleet leases end on every exit, a crashed holder is taken over, a live one keeps its lease.

Each cache is one simulated process with its own connections; the crashed holder is a real
process (``tests/lease_holder.py``) killed with SIGKILL while its loader runs.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from steadycache import (
    AsyncCache,
    AsyncRedisBackend,
    LoaderError,
    LoadTimeoutError,
    OriginLimit,
    OriginOverloaded,
    Policy,
    ReadThrough,
    SerializationError,
    SingleFlight,
    Stampede,
    Ttl,
)
from steadycache.policy import Eviction, LoaderTimeouts, SharedTiers
from tests.concurrency import AsyncLoader, gather_async, outcomes_async, returning_async
from tests.redis.helpers import shared_policy


def cache_on(url: str) -> AsyncCache:
    """One simulated process: a cache with its own connections to ``url``."""
    return AsyncCache(redis=AsyncRedisBackend(url))


def leases(url: str) -> list[bytes]:
    with redis.Redis.from_url(url) as client:
        return sorted(client.scan_iter(match="sc:lease:*"))


def policy(*, lease_ttl: float = 2.0, wait: float = 5.0, **stampede: Any) -> Policy:
    return Policy(
        pattern=ReadThrough(),
        invalidation=Ttl(60),
        consistency=SharedTiers(lease_ttl=lease_ttl),
        eviction=Eviction(accept_redis_noeviction=True),
        stampede=Stampede(single_flight=SingleFlight(wait_timeout=wait), **stampede),
    )


def failing_async(error: Exception) -> AsyncLoader:
    async def load() -> object:
        raise error

    return load


async def test_a_value_the_codec_refuses_releases_the_lease(redis_url: str) -> None:
    async with cache_on(redis_url) as first, cache_on(redis_url) as second:
        a = first.namespace("n", shared_policy())
        with pytest.raises(SerializationError):
            await a.get_or_load("k", returning_async({1, 2}))  # a set: JSON refuses it
        assert leases(redis_url) == []
        b = second.namespace("n", shared_policy())
        started = time.monotonic()
        assert await b.get_or_load("k", returning_async(5)) == 5
        assert time.monotonic() - started < 0.5  # nobody waited for a lease


@pytest.mark.parametrize(
    "make_failing",
    ["loader error", "origin refusal", "hard timeout"],
)
async def test_every_failed_load_releases_its_lease(redis_url: str, make_failing: str) -> None:
    stampede: dict[str, Any] = {}
    loader = failing_async(RuntimeError("database down"))
    expected: type[Exception] = LoaderError
    if make_failing == "origin refusal":
        stampede["origin_limit"] = OriginLimit(breaker_failures=1, breaker_reset=60)
    if make_failing == "hard timeout":
        stampede["timeouts"] = LoaderTimeouts(hard=0.05)
        loader = returning_async("late", delay=0.5)
        expected = LoadTimeoutError
    async with cache_on(redis_url) as first, cache_on(redis_url) as second:
        a = first.namespace("n", policy(**stampede))
        if make_failing == "origin refusal":
            # One failure opens the breaker; the next load is refused before its loader.
            with pytest.raises(LoaderError):
                await a.get_or_load("other", failing_async(RuntimeError("down")))
            expected = OriginOverloaded
        with pytest.raises(expected):
            await a.get_or_load("k", loader)
        assert leases(redis_url) == []
        b = second.namespace("n", policy())
        started = time.monotonic()
        assert await b.get_or_load("k", returning_async(7)) == 7
        assert time.monotonic() - started < 0.5


async def test_a_write_refused_as_older_releases_the_lease_and_is_counted_as_such(
    redis_url: str,
) -> None:
    async with cache_on(redis_url) as first, cache_on(redis_url) as second:
        a = first.namespace("n", shared_policy())
        b = second.namespace("n", shared_policy())

        async def load_then_lose_the_race() -> object:
            # Another process writes a newer version while this load runs.
            await b.set("k", "newer")
            return "older"

        assert await a.get_or_load("k", load_then_lose_the_race) == "older"
        assert leases(redis_url) == []
        assert a.stats().older_writes_rejected == 1
        assert a.stats().stale_sets_rejected == 0
        async with cache_on(redis_url) as third:
            assert await third.namespace("n", shared_policy()).get("k") == "newer"


@pytest.fixture
def crashed_holder(redis_url: str) -> Iterator[subprocess.Popen[str]]:
    """A process holding the lease of ``hot`` in namespace ``n``, SIGKILLed mid-load."""
    holder = subprocess.Popen(
        [sys.executable, "-m", "tests.lease_holder", redis_url, "n", "hot", "0.5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "loading"
        holder.send_signal(signal.SIGKILL)
        holder.wait(5)
        assert leases(redis_url) != []  # it died holding the lease
        yield holder
    finally:
        holder.kill()
        holder.wait(5)
        if holder.stdout is not None:
            holder.stdout.close()


async def test_waiters_on_a_crashed_holder_get_the_value_once_its_lease_expires(
    redis_url: str, crashed_holder: subprocess.Popen[str]
) -> None:
    # wait_timeout is twice the lease: a waiter must neither give up when the dead lease
    # expires nor while this process's leader loads after taking it over (0.6 s).
    calls: list[int] = []
    async with cache_on(redis_url) as cache:
        ns = cache.namespace("n", policy(lease_ttl=0.5, wait=1.0))
        started = time.monotonic()
        results = await outcomes_async(
            [lambda: ns.get_or_load("hot", returning_async("v", calls, delay=0.6))] * 10
        )
        elapsed = time.monotonic() - started
    assert results == ["v"] * 10
    assert calls == [1]
    assert elapsed < 0.5 + 0.6 + 0.5  # the dead lease, one load, and slack


async def test_a_live_holder_keeps_its_lease_through_a_load_longer_than_the_lease(
    redis_url: str,
) -> None:
    calls: list[int] = []
    async with cache_on(redis_url) as first, cache_on(redis_url) as second:
        a = first.namespace("n", policy(lease_ttl=0.3, wait=5.0))
        b = second.namespace("n", policy(lease_ttl=0.3, wait=5.0))

        async def later() -> object:
            await asyncio.sleep(0.1)  # a holds the lease by now
            return await b.get_or_load("slow", returning_async("from b", calls))

        results = await gather_async(
            [lambda: a.get_or_load("slow", returning_async("from a", calls, delay=1.2)), later]
        )
        assert results == ["from a", "from a"]
        assert calls == [1]  # b never loaded: a's lease was renewed, not expired
        assert first._lease_keeper.renewals >= 3
        assert leases(redis_url) == []
