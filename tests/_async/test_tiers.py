"""Two tiers across "processes" (caches with their own connections and backplanes)."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator

import pytest

from steadycache import (
    AsyncCache,
    AsyncRedisBackend,
    ConfigurationError,
    LoaderError,
    Policy,
    StaleIfError,
    Stampede,
    Ttl,
)
from steadycache.policy import HotKeyWarmUp, RefreshAhead, SharedTiers
from tests._async.processes import cache_on, subscribed, tiers_of, wait_for
from tests.concurrency import (
    AsyncBackground,
    AsyncLoader,
    AsyncSignal,
    gather_async,
    returning_async,
)
from tests.redis.helpers import cluster_url, shared_policy
from tests.redis_servers import RedisClusterProcesses


@pytest.fixture
async def two_processes(redis_url: str) -> AsyncIterator[tuple[AsyncCache, AsyncCache]]:
    async with cache_on(redis_url) as first, cache_on(redis_url) as second:
        yield first, second


async def test_shared_tiers_need_redis() -> None:
    cache = AsyncCache()
    with pytest.raises(ConfigurationError, match="no Redis"):
        cache.namespace("x", Policy(consistency=SharedTiers()))
    await cache.aclose()


async def test_a_write_in_one_process_is_read_by_another(
    two_processes: tuple[AsyncCache, AsyncCache],
) -> None:
    first, second = two_processes
    a = first.namespace("seats", shared_policy())
    b = second.namespace("seats", shared_policy())
    await a.set(("w", 1), {"free": 3})
    assert await b.get(("w", 1)) == {"free": 3}
    l1, l2 = b.stats().tiers
    assert (l1.tier, l2.tier) == ("memory", "redis")
    assert l2.hits == 1


async def test_backplane_evicts_stale_l1_copies_within_milliseconds(
    two_processes: tuple[AsyncCache, AsyncCache],
) -> None:
    first, second = two_processes
    a = first.namespace("seats", shared_policy())
    b = second.namespace("seats", shared_policy())
    await subscribed(first, second)
    await a.set("k", 1)
    assert await b.get("k") == 1  # now in b's L1
    await a.set("k", 2)
    elapsed = await wait_for(lambda: b.get("k"), 2, timeout=2.0)
    assert elapsed < 0.5
    l1, l2 = b.stats().tiers
    assert (l1.tier, l2.tier) == ("memory", "redis")
    await a.delete("k")
    await wait_for(lambda: b.get("k"), None, timeout=2.0)


async def test_l1_copy_lifetime_is_capped(two_processes: tuple[AsyncCache, AsyncCache]) -> None:
    first, _ = two_processes
    ns = first.namespace("capped", shared_policy(l1_max_age=0.2))
    await ns.set("k", 1)
    stored = await tiers_of(ns).shared.get(ns.stored_key("k"))
    local = tiers_of(ns).local.get(ns.stored_key("k"))
    assert stored is not None
    assert local is not None
    assert local.stale_until - time.time() <= 0.2
    assert stored.stale_until - time.time() > 50
    assert local.fresh_until == stored.fresh_until  # early refresh still sees the real expiry


async def test_fleet_wide_single_flight_with_leases(redis_url: str) -> None:
    caches = [cache_on(redis_url) for _ in range(3)]
    try:
        namespaces = [c.namespace("hot", shared_policy()) for c in caches]
        calls: list[int] = []
        load = returning_async("value", calls, delay=0.1)
        results = await gather_async(
            [functools.partial(namespaces[i % 3].get_or_load, "key", load) for i in range(90)]
        )
        assert results == ["value"] * 90
        assert len(calls) == 1
        assert sum(ns.stats().lease_waits for ns in namespaces) > 0
    finally:
        for cache in caches:
            await cache.aclose()


async def test_a_crashed_lease_holder_is_taken_over(redis_url: str) -> None:
    async with cache_on(redis_url) as cache:
        ns = cache.namespace("hot", shared_policy(lease_ttl=0.2))
        await cache.start()
        stored = ns.stored_key("key")
        assert await tiers_of(ns).acquire_lease(stored, 0.2) is not None
        started = time.monotonic()
        assert await ns.get_or_load("key", returning_async("recovered")) == "recovered"
        assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("writer", ["another process", "the same process"])
async def test_invalidation_during_a_load_is_not_undone(redis_url: str, writer: str) -> None:
    async with cache_on(redis_url) as writing, cache_on(redis_url) as reading:
        r = reading.namespace("profile", shared_policy())
        w = r if writer == "the same process" else writing.namespace("profile", shared_policy())
        loading, proceed = AsyncSignal(), AsyncSignal()

        async def slow_old_read() -> str:
            loading.set()
            await proceed.wait()
            return "old"

        load = AsyncBackground(lambda: r.get_or_load("k", slow_old_read))
        assert await loading.wait()
        await w.delete("k")  # the database changed; the writer invalidates
        proceed.set()
        assert await load.result() == "old"  # the caller gets it; the cache does not keep it
        assert await w.get("k") is None
        assert await r.get("k") is None
        assert r.stats().stale_sets_rejected == 1
        assert await w.get_or_load("k", returning_async("new")) == "new"


async def test_refresh_ahead_runs_in_one_process_only(redis_url: str) -> None:
    policy = shared_policy().replace(
        invalidation=Ttl(0.4, jitter=0),
        stampede=Stampede(
            refresh_ahead=RefreshAhead(at=0.5, check_interval=0.01), early_refresh=None
        ),
    )
    caches = [cache_on(redis_url) for _ in range(3)]
    try:
        namespaces = [c.namespace("ra", policy) for c in caches]
        loads: list[int] = []

        async def load() -> int:
            loads.append(1)
            await asyncio.sleep(0.02)
            return len(loads)

        deadline = time.monotonic() + 1.3
        while time.monotonic() < deadline:
            for ns in namespaces:
                await ns.get_or_load("k", load)
            await asyncio.sleep(0.01)
        # One load per refresh cycle across the fleet (~every 0.2 s), not one per process.
        assert len(loads) <= 10
        assert sum(ns.stats().refreshes_skipped for ns in namespaces) > 0
    finally:
        for cache in caches:
            await cache.aclose()


async def test_cluster_two_tiers_and_leases(redis_cluster: RedisClusterProcesses) -> None:
    url = cluster_url(redis_cluster)
    async with cache_on(url) as first, cache_on(url) as second:
        a = first.namespace("c", shared_policy())
        b = second.namespace("c", shared_policy())
        await a.set_many({f"k{i}": i for i in range(50)})
        assert await b.get_many([f"k{i}" for i in range(50)]) == list(range(50))
        assert await b.get_or_load("fresh", returning_async("v")) == "v"
        assert await a.get("fresh") == "v"


async def test_stale_if_error_still_applies_over_redis(redis_url: str) -> None:
    policy = shared_policy().replace(
        invalidation=Ttl(0.1, jitter=0),
        stampede=Stampede(stale_if_error=StaleIfError(30), early_refresh=None),
    )
    async with cache_on(redis_url) as cache:
        ns = cache.namespace("sie", policy)
        await ns.get_or_load("k", returning_async("good"))
        await asyncio.sleep(0.15)

        async def broken() -> str:
            raise ConnectionError("db down")

        assert await ns.get_or_load("k", broken) == "good"
        await ns.delete("k")
        with pytest.raises(LoaderError):
            await ns.get_or_load("k", broken)


async def test_server_evictions_and_memory_sit_beside_client_counters(redis_url: str) -> None:
    async with cache_on(redis_url) as cache:
        ns = cache.namespace("m", shared_policy())
        await ns.set("k", 1)
        await ns.get("k")
        # AsyncRedisStore.stats() shows the last INFO read and nothing reads it on its own.
        assert cache._redis is not None
        await cache._redis.server_stats()
        l1, l2 = ns.stats().tiers
        assert l2.bytes > 0
        assert l2.evictions >= 0
        assert set(l2.server_wide) == {"evictions", "expirations", "bytes"}
        assert l1.server_wide == ()
        # The shared Redis holds every namespace's keys: it cannot count this one's, and
        # says so rather than giving a number.
        assert l2.entries is None
        assert l1.entries == 1


async def test_shared_tiers_need_a_wall_clock(redis_url: str) -> None:
    cache = AsyncCache(redis=AsyncRedisBackend(redis_url), clock=lambda: 60.0)
    with pytest.raises(ConfigurationError, match="wall time"):
        cache.namespace("x", shared_policy())
    await cache.aclose()


async def test_a_noeviction_server_is_refused_before_the_first_request(redis_url: str) -> None:
    async with cache_on(redis_url) as cache:
        assert cache._redis is not None
        server = await cache._redis.client.config_get("maxmemory-policy")

        async def create_and_start() -> None:
            cache.namespace("strict", Policy(consistency=SharedTiers()))
            await cache.start()

        if server["maxmemory-policy"] == "noeviction":
            # The sync facade refuses it in namespace(), the asyncio one in start(): both
            # before the first request.
            with pytest.raises(ConfigurationError, match="noeviction"):
                await create_and_start()


async def test_a_lease_won_just_after_another_process_loaded_does_not_load_again(
    redis_url: str,
) -> None:
    async with cache_on(redis_url) as first, cache_on(redis_url) as second:
        a = first.namespace("hot", shared_policy())
        b = second.namespace("hot", shared_policy())
        assert await b.get("k") is None  # b decides to load: nothing there
        stored = b.stored_key("k")
        await a.get_or_load("k", returning_async("loaded by a"))  # a loads, releases its lease
        calls: list[int] = []

        # b now wins the free lease: it must find a's fresh value instead of loading again.
        load = returning_async("loaded by b", calls)
        assert await b._load_with_lease(stored, load, None, None, ()) == "loaded by a"
        assert calls == []
        assert not await tiers_of(b).lease_held(stored)


async def test_hot_key_snapshot_in_redis_warms_another_process(redis_url: str) -> None:
    policy = shared_policy().replace(warm_up=HotKeyWarmUp(top_k=3))
    async with cache_on(redis_url) as first:
        ns = first.namespace("seats", policy)
        for i in range(30):
            await ns.get_or_load(("w", i % 3), returning_async(0))
    # A new process (empty L1) after the shared entries are gone: the snapshot remains.
    async with cache_on(redis_url) as second:
        ns = second.namespace("seats", policy)
        await ns.invalidate_all()
        loaded: list[object] = []

        def loader_for(key: object, scope: object) -> AsyncLoader:
            async def load() -> object:
                loaded.append(key)
                return key

            return load

        report = await ns.warm(loader_for=loader_for)
        assert report.loaded == 3
        assert sorted(loaded) == [("w", 0), ("w", 1), ("w", 2)]  # type: ignore[type-var]
