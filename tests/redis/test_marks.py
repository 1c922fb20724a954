"""Invalidation by tag and by namespace generation across processes, on real Redis.

Each Cache here stands for one process (its own connections, L1 and backplane).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import redis

from steadycache import Cache, Ttl
from steadycache.policy import WriteThrough
from tests.redis.helpers import cache_on, cluster_url, shared_policy
from tests.redis.test_async_tiers import async_cache_on
from tests.redis_servers import RedisClusterProcesses


def wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


def subscribed(*caches: Cache) -> None:
    for cache in caches:
        assert cache._redis is not None
        assert cache._redis.backplane().wait_subscribed(2.0)


def test_a_tag_invalidated_in_one_process_is_refused_in_every_l1(standalone_url: str) -> None:
    with cache_on(standalone_url) as first, cache_on(standalone_url) as second:
        subscribed(first, second)
        a = first.namespace("rooms", shared_policy())
        b = second.namespace("rooms", shared_policy())
        a.set("r1", "a", tags=("hotel:1",))
        a.set("r2", "b", tags=("hotel:2",))
        assert b.get("r1") == "a"  # now in b's L1 too
        a.invalidate_tag("hotel:1")
        wait_for(lambda: b.get("r1") is None)
        assert b.get("r2") == "b"
        assert a.get("r1") is None
        # No key was scanned or deleted: the entry is still in Redis, refused by its counter.
        assert a.store.shared.get(a.stored_key("r1")) is not None  # type: ignore[attr-defined]


def test_a_lost_backplane_message_is_bounded_by_l1_max_age(standalone_url: str) -> None:
    policy = shared_policy(l1_max_age=0.3)
    with cache_on(standalone_url) as first, cache_on(standalone_url) as second:
        a = first.namespace("rooms", policy)
        b = second.namespace("rooms", policy)
        a.set("r1", "a", tags=("hotel:1",))
        assert b.get("r1") == "a"
        # Move the counter behind every backplane's back, as a lost message would.
        assert first._redis is not None
        a.store.shared.move_mark("t:hotel:1", 0)  # type: ignore[attr-defined]
        wait_for(lambda: b.get("r1") is None, timeout=2.0)


def test_a_load_that_began_before_a_tag_invalidation_elsewhere_is_refused(
    standalone_url: str,
) -> None:
    with cache_on(standalone_url) as reader, cache_on(standalone_url) as writer:
        subscribed(reader, writer)
        r = reader.namespace("rooms", shared_policy())
        w = writer.namespace("rooms", shared_policy())
        loading, invalidated = threading.Event(), threading.Event()

        def old_read() -> str:
            loading.set()
            invalidated.wait(5)
            return "old"

        thread = threading.Thread(target=lambda: r.get_or_load("r1", old_read, tags=("h:1",)))
        thread.start()
        assert loading.wait(5)
        w.invalidate_tag("h:1")
        invalidated.set()
        thread.join(5)
        assert w.get("r1") is None
        assert r.get_or_load("r1", lambda: "new", tags=("h:1",)) == "new"


def test_invalidate_all_is_a_shared_generation_without_a_scan(standalone_url: str) -> None:
    with cache_on(standalone_url) as first, cache_on(standalone_url) as second:
        subscribed(first, second)
        a = first.namespace("rooms", shared_policy())
        b = second.namespace("rooms", shared_policy())
        a.set_many({f"k{i}": i for i in range(20)})
        assert b.get_many([f"k{i}" for i in range(20)]) == list(range(20))
        a.invalidate_all()
        wait_for(lambda: b.stored_key("k1") == a.stored_key("k1"))
        assert b.get_many([f"k{i}" for i in range(20)]) == [None] * 20
        # A process started later joins the current generation.
        with cache_on(standalone_url) as third:
            c = third.namespace("rooms", shared_policy())
            assert c.stored_key("k1") == a.stored_key("k1")


def test_a_generation_lost_with_a_redis_restart_is_carried_forward(standalone_url: str) -> None:
    with cache_on(standalone_url) as first:
        a = first.namespace("rooms", shared_policy())
        a.invalidate_all()
        a.invalidate_all()
        key_before = a.stored_key("k")
        with redis.Redis.from_url(standalone_url) as client:
            client.flushdb()  # what a restart without persistence does
        a._maintain(time.time() + 5)  # the maintenance pass re-reads the generation
        assert a.stored_key("k") == key_before  # never goes backwards
        with cache_on(standalone_url) as second:
            assert second.namespace("rooms", shared_policy()).stored_key("k") == key_before


def test_tags_and_generations_on_a_cluster(redis_cluster: RedisClusterProcesses) -> None:
    url = cluster_url(redis_cluster)
    with cache_on(url) as first, cache_on(url) as second:
        subscribed(first, second)
        a = first.namespace("c", shared_policy())
        b = second.namespace("c", shared_policy())
        a.set_many({f"k{i}": i for i in range(30)}, tags=("all",))
        a.set("solo", 1, tags=("solo",))
        assert b.get_many([f"k{i}" for i in range(30)]) == list(range(30))
        b.invalidate_tag("all")
        wait_for(lambda: a.get("k0") is None)
        assert a.get_many([f"k{i}" for i in range(30)]) == [None] * 30
        assert a.get("solo") == 1
        b.invalidate_all()
        wait_for(lambda: a.get("solo") is None)


def test_write_through_in_one_process_beats_a_load_in_another(standalone_url: str) -> None:
    policy = shared_policy().replace(
        pattern=WriteThrough(on_write="update"), invalidation=Ttl(3600)
    )
    database = {"k": "old"}
    with cache_on(standalone_url) as reader, cache_on(standalone_url) as writer:
        subscribed(reader, writer)
        r = reader.namespace("p", policy)
        w = writer.namespace("p", policy)
        loading, written = threading.Event(), threading.Event()

        def old_read() -> str:
            value = database["k"]
            loading.set()
            written.wait(5)
            return value

        thread = threading.Thread(target=lambda: r.get_or_load("k", old_read))
        thread.start()
        assert loading.wait(5)
        w.write("k", "new", writer=lambda value: database.__setitem__("k", value))
        written.set()
        thread.join(5)
        assert w.get("k") == "new"
        wait_for(lambda: r.get("k") == "new")


async def test_async_tags_and_generation_across_processes(standalone_url: str) -> None:
    async with async_cache_on(standalone_url) as first, async_cache_on(standalone_url) as second:
        policy = shared_policy()
        a = first.namespace("rooms", policy)
        b = second.namespace("rooms", policy)
        await first.start()
        await second.start()
        await a.set("r1", "a", tags=("hotel:1",))
        assert await b.get("r1") == "a"
        await a.invalidate_tag("hotel:1")
        deadline = time.monotonic() + 3
        while await b.get("r1") is not None:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.005)
        await a.set("r2", "b")
        await b.invalidate_all()
        while a.stored_key("r2") != b.stored_key("r2"):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.005)
        assert await a.get("r2") is None
