"""The asyncio Redis store and two tiers: contract, leases, backplane, fail-safe."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from steadycache import AsyncCache, ConfigurationError, Entry, Policy, StoreError
from steadycache.codecs import JsonCodec
from steadycache.policy import SharedTiers
from steadycache.stores.redis_async import AsyncRedisBackend, AsyncRedisStore
from tests.redis.helpers import cluster_url, configure_as_cache, shared_policy
from tests.redis_servers import RedisClusterProcesses, RedisServer


def async_cache_on(url: str, **backend: object) -> AsyncCache:
    return AsyncCache(redis=AsyncRedisBackend(url, **backend))  # type: ignore[arg-type]


def entry(value: object, version: int = 1, ttl: float = 30.0) -> Entry:
    now = time.time()
    return Entry(
        value, stored_at=now, fresh_until=now + ttl, stale_until=now + ttl, version=version
    )


async def test_async_store_contract(standalone_url: str) -> None:
    backend = AsyncRedisBackend(standalone_url)
    store = AsyncRedisStore(backend, JsonCodec(), namespace="ns")
    assert await store.get("ns:g0:sa") is None
    await store.set("ns:g0:sa", entry({"a": 1}, version=5))
    found = await store.get("ns:g0:sa")
    assert found is not None
    assert found.value == {"a": 1}
    await store.set("ns:g0:sa", entry("older", version=1))
    assert (await store.get("ns:g0:sa")).value == {"a": 1}  # type: ignore[union-attr]
    await store.set_many({"ns:g0:sb": entry(2), "ns:g0:sc": entry(3)})
    values = [e.value if e else None for e in await store.get_many(["ns:g0:sb", "x", "ns:g0:sc"])]
    assert values == [2, None, 3]
    assert await store.delete("ns:g0:sb")
    token = await store.acquire_lease("ns:g0:sd", 5)
    assert token is not None
    assert await store.acquire_lease("ns:g0:sd", 5) is None
    await store.delete("ns:g0:sd")
    assert await store.set_leased("ns:g0:sd", entry(1), token) is False
    await store.clear()
    assert await store.get("ns:g0:sa") is None
    await backend.aclose()


async def test_async_shared_tiers_across_processes(standalone_url: str) -> None:
    async with async_cache_on(standalone_url) as first, async_cache_on(standalone_url) as second:
        a = first.namespace("seats", shared_policy())
        b = second.namespace("seats", shared_policy())
        await first.start()
        await second.start()
        for cache in (first, second):
            assert await cache._redis.backplane().wait_subscribed(2.0)  # type: ignore[union-attr]
        await a.set("k", 1)
        assert await b.get("k") == 1
        await a.set("k", 2)
        deadline = time.monotonic() + 2
        while await b.get("k") != 2:
            assert time.monotonic() < deadline, "backplane did not evict the L1 copy"
            await asyncio.sleep(0.005)
        l1, l2 = b.stats().tiers
        assert (l1.tier, l2.tier) == ("memory", "redis")


async def test_async_fleet_single_flight(standalone_url: str) -> None:
    caches = [async_cache_on(standalone_url) for _ in range(3)]
    namespaces = [c.namespace("hot", shared_policy()) for c in caches]
    calls = 0

    async def load() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.1)
        return "value"

    results = await asyncio.gather(*[namespaces[i % 3].get_or_load("k", load) for i in range(90)])
    assert results == ["value"] * 90
    assert calls == 1
    for cache in caches:
        await cache.aclose()


async def test_async_invalidation_during_load_is_not_undone(standalone_url: str) -> None:
    async with async_cache_on(standalone_url) as cache:
        ns = cache.namespace("p", shared_policy())
        loading = asyncio.Event()
        proceed = asyncio.Event()

        async def old_read() -> str:
            loading.set()
            await proceed.wait()
            return "old"

        task = asyncio.ensure_future(ns.get_or_load("k", old_read))
        await loading.wait()
        await ns.delete("k")
        proceed.set()
        assert await task == "old"
        assert ns.stats().stale_sets_rejected == 1
        assert await ns.get("k") is None


async def test_async_noeviction_refused_at_start(standalone_url: str) -> None:
    async with async_cache_on(standalone_url) as cache:
        policy = Policy(consistency=SharedTiers())
        cache.namespace("strict", policy)
        server = await cache._redis.client.config_get("maxmemory-policy")  # type: ignore[union-attr]
        if server["maxmemory-policy"] == "noeviction":
            with pytest.raises(ConfigurationError, match="noeviction"):
                await cache.start()


async def test_async_kill_redis_keeps_answering(redis_server: RedisServer) -> None:
    configure_as_cache(redis_server)
    async with async_cache_on(
        redis_server.url,
        command_timeout=0.1,
        connect_timeout=0.1,
        breaker_failures=3,
        breaker_reset=0.3,
    ) as cache:
        ns = cache.namespace("avail", shared_policy(l1_max_age=0.2))
        answered = 0
        errors: list[BaseException] = []

        def load_for(key: int) -> Callable[[], Awaitable[int]]:
            async def load() -> int:
                return key

            return load

        async def traffic(until: float) -> None:
            nonlocal answered
            i = 0
            while time.monotonic() < until:
                try:
                    assert await ns.get_or_load(i % 10, load_for(i % 10)) == i % 10
                    answered += 1
                except BaseException as exc:
                    errors.append(exc)
                i += 1
                await asyncio.sleep(0.001)

        runner = asyncio.ensure_future(traffic(time.monotonic() + 2.0))
        await asyncio.sleep(0.3)
        redis_server.kill()
        await asyncio.sleep(0.8)
        down = answered
        redis_server.restart()
        await runner
        assert errors == []
        assert down > 50
        assert getattr(ns.store, "fallbacks", 0) > 0
        backplane = cache._redis.backplane()  # type: ignore[union-attr]
        assert backplane.resyncs >= 1


async def test_async_store_error_when_asked(redis_server: RedisServer) -> None:
    configure_as_cache(redis_server)
    async with async_cache_on(redis_server.url, command_timeout=0.1, connect_timeout=0.1) as cache:
        ns = cache.namespace("strict", shared_policy(on_store_error="raise"))
        await cache.start()
        redis_server.kill()
        with pytest.raises(StoreError):
            await ns.get("k")
        redis_server.restart()


async def test_async_cluster(redis_cluster: RedisClusterProcesses) -> None:
    url = cluster_url(redis_cluster)
    async with async_cache_on(url) as cache:
        ns = cache.namespace("c", shared_policy())
        await ns.set_many({f"k{i}": i for i in range(30)})
        assert await ns.get_many([f"k{i}" for i in range(30)]) == list(range(30))

        async def load() -> str:
            return "v"

        assert await ns.get_or_load("fresh", load) == "v"


async def test_async_hot_key_snapshot_in_redis(standalone_url: str) -> None:
    from steadycache.policy import HotKeyWarmUp

    policy = shared_policy().replace(warm_up=HotKeyWarmUp(top_k=2))

    def value_of(key: int) -> Callable[[], Awaitable[int]]:
        async def load() -> int:
            return key

        return load

    async with async_cache_on(standalone_url) as first:
        ns = first.namespace("w", policy)
        for i in range(10):
            await ns.get_or_load(i % 2, value_of(i % 2))
    async with async_cache_on(standalone_url) as second:
        ns = second.namespace("w", policy)
        report = await ns.warm(loader_for=lambda key, scope: value_of(key))  # type: ignore[arg-type]
        assert report.loaded == 2
