"""Redis down, slow or failing over: the service keeps answering, every fallback counted."""

from __future__ import annotations

import asyncio
import functools
import gc
import time
from collections.abc import Iterator
from typing import Any

import pytest

from steadycache import AsyncCache, AsyncNamespace, StoreError
from steadycache.stores.redis_backend import redis_key
from tests._async.processes import cache_on, reconnected, tiers_of
from tests.concurrency import AsyncBackground, AsyncSignal, blocking_async, returning_async
from tests.redis.helpers import cluster_url, configure_as_cache, shared_policy
from tests.redis_servers import RedisClusterProcesses, RedisServer, SentinelGroup, pause

FAST_FAILING = {
    "command_timeout": 0.1,
    "connect_timeout": 0.1,
    "breaker_failures": 3,
    "breaker_reset": 0.3,
}


class Load:
    """Callers reading 20 keys through get_or_load until stopped; records every outcome.

    Outcomes go to lists: an append is atomic, and the sync twin's callers are threads.
    """

    def __init__(self, ns: AsyncNamespace, callers: int = 4) -> None:
        self.ns = ns
        self.errors: list[BaseException] = []
        self.latencies: list[float] = []
        self.answered: list[int] = []
        self.loads: list[int] = []
        self._callers = callers
        self._stop = AsyncSignal()
        self._running: list[AsyncBackground[None]] = []

    @property
    def answers(self) -> int:
        return len(self.answered)

    async def _run(self, offset: int) -> None:
        i = offset
        while not self._stop.is_set():
            key = i % 20
            started = time.monotonic()
            try:
                value = await self.ns.get_or_load(key, returning_async(key * 10, self.loads))
                assert value == key * 10
                self.answered.append(key)
            except BaseException as exc:
                self.errors.append(exc)
            self.latencies.append(time.monotonic() - started)
            i += 1
            await asyncio.sleep(0.001)

    async def __aenter__(self) -> Load:
        self._running = [
            AsyncBackground(functools.partial(self._run, n)) for n in range(self._callers)
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        for caller in self._running:
            await caller.result()


async def test_killing_redis_under_load_degrades_then_recovers(redis_server: RedisServer) -> None:
    configure_as_cache(redis_server)
    async with cache_on(redis_server.url, **FAST_FAILING) as cache:
        ns = cache.namespace("avail", shared_policy(l1_max_age=0.2))
        await cache.start()
        backplane = cache.backplane
        assert backplane is not None
        assert await backplane.wait_subscribed(2.0)
        async with Load(ns) as load:
            await asyncio.sleep(0.3)
            await blocking_async(redis_server.kill)
            await asyncio.sleep(1.0)  # Redis is gone: answers come from L1, then from the loader
            answered_while_down = load.answers
            await blocking_async(redis_server.restart)
            await asyncio.sleep(1.0)
        assert load.errors == []
        assert answered_while_down > 50
        assert max(load.latencies) < 1.0  # bounded timeouts and a breaker: never a hang
        tiers = ns.stats().tiers
        assert tiers_of(ns).fallbacks > 0
        assert tiers[1].errors > 0
        # After the restart: the backplane reconnected and flushed L1, writes reach Redis.
        assert backplane.disconnects >= 1
        assert backplane.resyncs >= 1
        await ns.set("after", 1)
        stored = redis_key("sc", ns.stored_key("after"))
        assert redis_server.execute("EXISTS", stored) == 1


async def test_a_paused_server_costs_a_bounded_timeout(redis_server: RedisServer) -> None:
    configure_as_cache(redis_server)
    async with cache_on(redis_server.url, **FAST_FAILING) as cache:
        ns = cache.namespace("avail", shared_policy())
        await ns.get_or_load("k", returning_async(1))
        pause(redis_server, 800)
        started = time.monotonic()
        assert await ns.get_or_load("other", returning_async(2)) == 2  # L2 times out: loader
        assert time.monotonic() - started < 0.6
        assert await ns.get("k") == 1  # still in L1
        assert tiers_of(ns).fallbacks >= 1


async def test_errors_can_be_asked_for(redis_server: RedisServer) -> None:
    configure_as_cache(redis_server)
    async with cache_on(redis_server.url, **FAST_FAILING) as cache:
        ns = cache.namespace("strict", shared_policy(on_store_error="raise"))
        await cache.start()
        await blocking_async(redis_server.kill)
        with pytest.raises(StoreError):
            await ns.get("k")
        await blocking_async(redis_server.restart)
        await reconnected(cache)


@pytest.fixture
def dropped_connections_collected() -> Iterator[None]:
    """redis-py's cluster client drops the connections to the nodes a failover replaced
    without closing them. Collect them in this test, whose filter lets their
    ResourceWarning pass, rather than in whichever test the garbage collector next runs in."""
    yield
    gc.collect()


@pytest.mark.usefixtures("dropped_connections_collected")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_cluster_primary_failover_under_load(redis_cluster: RedisClusterProcesses) -> None:
    for node in redis_cluster.nodes:
        configure_as_cache(node)
    url = cluster_url(redis_cluster)
    async with cache_on(url, command_timeout=0.2, connect_timeout=0.2) as cache:
        ns = cache.namespace("avail", shared_policy(l1_max_age=0.2))
        async with Load(ns) as load:
            await asyncio.sleep(0.3)
            await blocking_async(lambda: redis_cluster.failover(kill=True))
            await asyncio.sleep(0.5)
        assert load.errors == []
        assert load.answers > 100
        # The client finds the promoted primary by itself: writes reach L2 again.
        shared = tiers_of(ns).shared
        stored = ns.stored_key("after-failover")
        deadline = time.monotonic() + 10
        seen: list[str] = []
        while True:
            try:
                await shared.set(stored, ns._state.make_entry(1))
                if await shared.get(stored) is not None:
                    break
            except StoreError as error:  # still rediscovering the slots
                seen.append(repr(error.__cause__) + repr(error))
            assert time.monotonic() < deadline, f"the cluster client did not recover: {seen[-3:]}"
            await asyncio.sleep(0.1)


async def test_sentinel_url(redis_sentinel: SentinelGroup) -> None:
    hosts = ",".join(f"{h}:{p}" for h, p in redis_sentinel.addresses)
    url = f"redis+sentinel://{hosts}/{redis_sentinel.service_name}"
    for server in redis_sentinel.servers:
        configure_as_cache(server)
    async with cache_on(url) as first, cache_on(url) as second:
        await first.namespace("s", shared_policy()).set("k", "via sentinel")
        assert await second.namespace("s", shared_policy()).get("k") == "via sentinel"
        sentinels = sentinel_clients(first) + sentinel_clients(second)
    # Closing the backend leaves its connections to the sentinels open: close them here, or
    # the garbage collector reports them in whichever test it happens to run in.
    for sentinel in sentinels:
        await sentinel.aclose()


def sentinel_clients(cache: AsyncCache) -> list[Any]:
    """The clients a Sentinel-managed backend asks for the primary."""
    assert cache._redis is not None
    return list(cache._redis.client.connection_pool.sentinel_manager.sentinels)
