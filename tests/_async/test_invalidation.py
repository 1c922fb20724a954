"""Invalidation by key, tag and namespace generation, in one process (no Redis).

A load that began before an invalidation never stores its older value afterwards. The
shared-tier versions (every process, Redis Cluster) are in tests/redis/test_marks.py.
"""

from __future__ import annotations

import pytest

from steadycache import AsyncCache, InvalidKeyError, Policy, Ttl
from tests.concurrency import AsyncBackground, AsyncSignal, held_async, returning_async


async def test_a_tag_invalidates_every_entry_carrying_it_and_nothing_else() -> None:
    async with AsyncCache() as cache:
        ns = cache.namespace("rooms", Policy(invalidation=Ttl(3600)))
        await ns.set("r1", "a", tags=("hotel:1",))
        await ns.set("r2", "b", tags=("hotel:1", "city:paris"))
        await ns.set("r3", "c", tags=("hotel:2",))
        await ns.set("r4", "d")
        assert await ns.invalidate_tag("hotel:1") == 1
        assert await ns.get_many(["r1", "r2", "r3", "r4"]) == [None, None, "c", "d"]
        assert await ns.get_entry("r2") is None
        assert ns.stats().tag_stale_dropped >= 2
        # New writes under the tag are served again: they record the new counter.
        await ns.set("r1", "a2", tags=("hotel:1",))
        assert await ns.get("r1") == "a2"
        assert await ns.get_or_load("r5", returning_async("e"), tags=("city:paris",)) == "e"
        await ns.invalidate_tag("city:paris")
        assert await ns.get_or_load("r5", returning_async("e2"), tags=("city:paris",)) == "e2"


async def test_a_load_that_began_before_a_tag_invalidation_is_not_served() -> None:
    # The loader reads the source, then the source changes and the tag is invalidated,
    # then the load finishes: its (old) value must not be served afterwards.
    async with AsyncCache() as cache:
        ns = cache.namespace("rooms", Policy(invalidation=Ttl(3600)))
        loading, invalidated = AsyncSignal(), AsyncSignal()
        source = {"r1": "old"}

        async def slow_loader() -> str:
            value = source["r1"]
            loading.set()
            await invalidated.wait(5)
            return value

        async def current() -> str:
            return source["r1"]

        reader = AsyncBackground(lambda: ns.get_or_load("r1", slow_loader, tags=("hotel:1",)))
        assert await loading.wait(5)
        source["r1"] = "new"
        await ns.invalidate_tag("hotel:1")
        invalidated.set()
        await reader.result(5)
        assert await ns.get_or_load("r1", current, tags=("hotel:1",)) == "new"


async def test_a_delete_during_a_load_is_not_undone_in_process() -> None:
    async with AsyncCache() as cache:
        ns = cache.namespace("rooms", Policy(invalidation=Ttl(3600)))
        loading, deleted = AsyncSignal(), AsyncSignal()
        reader = AsyncBackground(lambda: ns.get_or_load("k", held_async("old", loading, deleted)))
        assert await loading.wait(5)
        await ns.delete("k")
        deleted.set()
        await reader.result(5)
        assert await ns.get("k") is None
        assert ns.stats().stale_sets_rejected == 1


async def test_namespace_generation_makes_every_old_key_unreachable() -> None:
    async with AsyncCache() as cache:
        ns = cache.namespace("rooms", Policy(invalidation=Ttl(3600)))
        await ns.set_many({f"k{i}": i for i in range(100)})
        before = ns.stored_key("k1")
        assert await ns.invalidate_all() == 100  # the in-process copies are dropped at once
        assert ns.stored_key("k1") != before
        assert await ns.get_many([f"k{i}" for i in range(100)]) == [None] * 100


async def test_bad_tags_are_refused_before_anything_is_written() -> None:
    async with AsyncCache() as cache:
        ns = cache.namespace("rooms")
        with pytest.raises(InvalidKeyError, match="tag"):
            await ns.invalidate_tag("")
        with pytest.raises(InvalidKeyError, match="tag"):
            await ns.invalidate_tag(7)  # type: ignore[arg-type]
