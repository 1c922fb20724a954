"""Invalidation by tag and by namespace generation across processes, on real Redis.

Each cache here stands for one process (its own connections, L1 and backplane).
"""

from __future__ import annotations

import time

import redis

from steadycache import Ttl
from steadycache.policy import WriteThrough
from tests._async.processes import cache_on, subscribed, tiers_of, wait_for
from tests.concurrency import AsyncBackground, AsyncSignal, returning_async
from tests.redis.helpers import cluster_url, shared_policy
from tests.redis_servers import RedisClusterProcesses


async def test_a_tag_invalidated_in_one_process_is_refused_in_every_l1(redis_url: str) -> None:
    async with cache_on(redis_url) as first, cache_on(redis_url) as second:
        a = first.namespace("rooms", shared_policy())
        b = second.namespace("rooms", shared_policy())
        await subscribed(first, second)
        await a.set("r1", "a", tags=("hotel:1",))
        await a.set("r2", "b", tags=("hotel:2",))
        assert await b.get("r1") == "a"  # now in b's L1 too
        await a.invalidate_tag("hotel:1")
        await wait_for(lambda: b.get("r1"), None)
        assert await b.get("r2") == "b"
        assert await a.get("r1") is None
        # No key was scanned or deleted: the entry is still in Redis, refused by its counter.
        assert await tiers_of(a).shared.get(a.stored_key("r1")) is not None


async def test_a_lost_backplane_message_is_bounded_by_l1_max_age(redis_url: str) -> None:
    policy = shared_policy(l1_max_age=0.3)
    async with cache_on(redis_url) as first, cache_on(redis_url) as second:
        a = first.namespace("rooms", policy)
        b = second.namespace("rooms", policy)
        await a.set("r1", "a", tags=("hotel:1",))
        assert await b.get("r1") == "a"
        # Move the counter behind every backplane's back, as a lost message would.
        assert first._redis is not None
        await tiers_of(a).shared.move_mark("t:hotel:1", 0)
        await wait_for(lambda: b.get("r1"), None, timeout=2.0)


async def test_a_load_that_began_before_a_tag_invalidation_elsewhere_is_refused(
    redis_url: str,
) -> None:
    async with cache_on(redis_url) as reader, cache_on(redis_url) as writer:
        r = reader.namespace("rooms", shared_policy())
        w = writer.namespace("rooms", shared_policy())
        await subscribed(reader, writer)
        loading, invalidated = AsyncSignal(), AsyncSignal()

        async def old_read() -> str:
            loading.set()
            await invalidated.wait()
            return "old"

        load = AsyncBackground(lambda: r.get_or_load("r1", old_read, tags=("h:1",)))
        assert await loading.wait()
        await w.invalidate_tag("h:1")
        invalidated.set()
        await load.result()
        assert await w.get("r1") is None
        assert await r.get_or_load("r1", returning_async("new"), tags=("h:1",)) == "new"


async def test_invalidate_all_is_a_shared_generation_without_a_scan(redis_url: str) -> None:
    async with cache_on(redis_url) as first, cache_on(redis_url) as second:
        a = first.namespace("rooms", shared_policy())
        b = second.namespace("rooms", shared_policy())
        await subscribed(first, second)
        await a.set_many({f"k{i}": i for i in range(20)})
        assert await b.get_many([f"k{i}" for i in range(20)]) == list(range(20))
        await a.invalidate_all()

        async def key_in_b() -> str:
            return b.stored_key("k1")

        await wait_for(key_in_b, a.stored_key("k1"))
        assert await b.get_many([f"k{i}" for i in range(20)]) == [None] * 20
        # A process started later joins the current generation.
        async with cache_on(redis_url) as third:
            c = third.namespace("rooms", shared_policy())
            await third.start()
            assert c.stored_key("k1") == a.stored_key("k1")


async def test_invalidate_all_elsewhere_reaches_a_process_that_wrote_the_entry(
    redis_url: str,
) -> None:
    async with cache_on(redis_url) as first, cache_on(redis_url) as second:
        a = first.namespace("rooms", shared_policy())
        b = second.namespace("rooms", shared_policy())
        await subscribed(first, second)
        await a.set("r2", "b")
        assert await a.get("r2") == "b"
        await b.invalidate_all()

        async def key_in_a() -> str:
            return a.stored_key("r2")

        await wait_for(key_in_a, b.stored_key("r2"))
        assert await a.get("r2") is None


async def test_a_generation_lost_with_a_redis_restart_is_carried_forward(redis_url: str) -> None:
    async with cache_on(redis_url) as first:
        a = first.namespace("rooms", shared_policy())
        await a.invalidate_all()
        await a.invalidate_all()
        key_before = a.stored_key("k")
        with redis.Redis.from_url(redis_url) as client:
            client.flushdb()  # what a restart without persistence does
        await a.maintain(time.time() + 5)  # the maintenance pass re-reads the generation
        assert a.stored_key("k") == key_before  # never goes backwards
        async with cache_on(redis_url) as second:
            b = second.namespace("rooms", shared_policy())
            await second.start()
            assert b.stored_key("k") == key_before


async def test_tags_and_generations_on_a_cluster(redis_cluster: RedisClusterProcesses) -> None:
    url = cluster_url(redis_cluster)
    async with cache_on(url) as first, cache_on(url) as second:
        a = first.namespace("c", shared_policy())
        b = second.namespace("c", shared_policy())
        await subscribed(first, second)  # after namespace(): a start runs a first command
        await a.set_many({f"k{i}": i for i in range(30)}, tags=("all",))
        await a.set("solo", 1, tags=("solo",))
        assert await b.get_many([f"k{i}" for i in range(30)]) == list(range(30))
        await b.invalidate_tag("all")
        await wait_for(lambda: a.get("k0"), None)
        assert await a.get_many([f"k{i}" for i in range(30)]) == [None] * 30
        assert await a.get("solo") == 1
        await b.invalidate_all()
        await wait_for(lambda: a.get("solo"), None)


async def test_write_through_in_one_process_beats_a_load_in_another(redis_url: str) -> None:
    policy = shared_policy().replace(
        pattern=WriteThrough(on_write="update"), invalidation=Ttl(3600)
    )
    database = {"k": "old"}
    async with cache_on(redis_url) as reader, cache_on(redis_url) as writer:
        r = reader.namespace("p", policy)
        w = writer.namespace("p", policy)
        await subscribed(reader, writer)
        loading, written = AsyncSignal(), AsyncSignal()

        async def old_read() -> str:
            value = database["k"]
            loading.set()
            await written.wait()
            return value

        async def write_database(value: str) -> None:
            database["k"] = value

        load = AsyncBackground(lambda: r.get_or_load("k", old_read))
        assert await loading.wait()
        await w.write("k", "new", writer=write_database)
        written.set()
        await load.result()
        assert await w.get("k") == "new"
        await wait_for(lambda: r.get("k"), "new")
