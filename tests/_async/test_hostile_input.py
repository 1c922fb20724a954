"""Bad input gets a clear error before any I/O, never a wrong answer or a tripped breaker.

Decorated functions of two modules never share keys; per-call lifetimes respect a
TRANSACTIONAL namespace's acknowledged staleness; keys and tags are validated once (lone
surrogates, huge ints, bare strings as tags); a process started after a fleet-wide
invalidation never serves what it invalidated.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import redis

from steadycache import (
    AsyncCache,
    AsyncRedisBackend,
    ConfigurationError,
    InvalidKeyError,
    Policy,
    ReadThrough,
    Scope,
    Security,
    Sensitivity,
    Ttl,
    UsageError,
)
from tests.concurrency import AsyncLookup, returning_async
from tests.redis.helpers import shared_policy

#: What ``json.loads`` makes of request data carrying half a surrogate pair.
LONE_SURROGATE = json.loads('"caf\\udce9"')


def cache_on(url: str) -> AsyncCache:
    return AsyncCache(redis=AsyncRedisBackend(url))


def in_module(module: str, answer: str) -> AsyncLookup:
    """A function named ``lookup`` defined in ``module``."""

    async def lookup(item: int) -> str:
        return f"{answer} {item}"

    lookup.__module__ = module
    return lookup


# --- decorated functions --------------------------------------------------------------------


async def test_cached_functions_of_two_modules_never_answer_for_each_other() -> None:
    async with AsyncCache() as cache:
        ns = cache.namespace("lookups", Policy(pattern=ReadThrough()))
        billing = cache.cached(ns)(in_module("billing", "invoice"))
        shipping = cache.cached(ns)(in_module("shipping", "parcel"))
        assert await billing(1) == "invoice 1"
        assert await shipping(1) == "parcel 1"  # not billing's cached answer
        assert billing.key(1) != shipping.key(1)
        assert billing.key(1) == ns.stored_key(
            (f"billing.{billing.__qualname__}", 1)
        )  # the documented key: module.qualname, then the arguments
        assert await billing.invalidate(1) is True
        assert await billing.invalidate(1) is False
        assert ns.stats().invalidations == 2  # each call counts, entry there or not


async def test_two_functions_that_would_share_keys_are_refused_at_decoration() -> None:
    async with AsyncCache() as cache:
        ns = cache.namespace("lookups", Policy(pattern=ReadThrough()))
        cache.cached(ns)(in_module("billing", "invoice"))
        with pytest.raises(UsageError, match="collide"):
            cache.cached(ns)(in_module("billing", "other"))  # same module, same qualname
        # key= makes the caller answer for the keys: allowed.
        cache.cached(ns, key=lambda item: ("other", item))(in_module("billing", "other"))


# --- lifetimes under an acknowledged staleness bound -----------------------------------------


def seats_policy() -> Policy:
    return Policy(
        pattern=ReadThrough(),
        invalidation=Ttl(5),
        sensitivity=Sensitivity.transactional(max_staleness=10, acknowledged_by="ops, 2026-12"),
    )


async def test_a_per_call_ttl_cannot_outlive_the_acknowledged_staleness() -> None:
    calls: list[int] = []
    async with AsyncCache() as cache:
        seats = cache.namespace("seats", seats_policy())
        with pytest.raises(ConfigurationError, match="at most 10s"):
            await seats.set("seat", 1, ttl=3600)
        with pytest.raises(ConfigurationError, match="at most 10s"):
            await seats.set_many({"seat": 1}, ttl=3600)
        with pytest.raises(ConfigurationError, match="at most 10s"):
            await seats.get_or_load("seat", returning_async(1, calls), ttl=3600)
        assert calls == []  # refused before the loader ran
        assert await seats.get("seat") is None  # and before anything was written
        with pytest.raises(ConfigurationError, match="at most 10s"):
            cache.cached(seats, ttl=3600)
        await seats.set("seat", 1, ttl=8)  # within the bound: fine
        assert await seats.get("seat") == 1


@pytest.mark.parametrize("ttl", [1e300, float("nan"), -1, "60"])
async def test_a_per_call_ttl_is_checked_like_the_policy_s(ttl: Any) -> None:
    async with AsyncCache() as cache:
        ns = cache.namespace("n", Policy(pattern=ReadThrough()))
        with pytest.raises(ConfigurationError, match="ttl"):
            await ns.set("k", 1, ttl=ttl)
        with pytest.raises(ConfigurationError, match="ttl"):
            await ns.get_or_load("k", returning_async(1), ttl=ttl)
        assert await ns.get("k") is None


# --- keys and tags ---------------------------------------------------------------------------


async def test_a_lone_surrogate_is_an_invalid_key_before_any_io_and_trips_no_breaker(
    redis_url: str,
) -> None:
    calls: list[int] = []
    async with cache_on(redis_url) as cache:
        ns = cache.namespace("n", shared_policy())
        for _ in range(10):  # more than the breaker's threshold
            with pytest.raises(InvalidKeyError, match="surrogate"):
                await ns.get_or_load(LONE_SURROGATE, returning_async(1, calls))
            with pytest.raises(InvalidKeyError, match="surrogate"):
                await ns.set(("user", LONE_SURROGATE), 1)
        assert calls == []
        backend = cache._redis
        assert backend is not None
        assert not backend.breaker.is_open
        assert backend.errors == 0
        # The server is still used for everyone else.
        assert await ns.get_or_load("fine", returning_async(2)) == 2
        assert ns.stats().tiers[1].sets == 1


async def test_lone_surrogates_are_refused_in_hashed_keys_scopes_and_tags() -> None:
    async with AsyncCache() as cache:
        hashed = cache.namespace(
            "people",
            Policy(
                sensitivity=Sensitivity.PERSONAL,
                security=Security(scope=Scope("user_id"), hash_keys=True),
            ),
        )
        with pytest.raises(InvalidKeyError, match="surrogate"):
            await hashed.get("profile", scope={"user_id": LONE_SURROGATE})
        with pytest.raises(InvalidKeyError, match="surrogate"):
            await hashed.set(LONE_SURROGATE, 1, scope={"user_id": 7})
        plain = cache.namespace("plain")
        with pytest.raises(InvalidKeyError, match="surrogate"):
            await plain.set("k", 1, tags=(LONE_SURROGATE,))
        assert await plain.get("k") is None


async def test_huge_int_keys_are_keys_not_value_errors() -> None:
    async with AsyncCache() as cache:
        hashed = cache.namespace("big", Policy(security=Security(hash_keys=True)))
        await hashed.set(10**5000, "a")
        await hashed.set(10**5000 + 1, "b")
        assert await hashed.get(10**5000) == "a"
        assert await hashed.get(10**5000 + 1) == "b"
        readable = cache.namespace("readable")
        with pytest.raises(InvalidKeyError, match="max_key_length"):
            await readable.set(10**5000, "a")


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ([1], "non-empty str"),
        ([""], "non-empty str"),
        ("hotel", "string"),
        (["x" * 600], "at most"),
        ([f"t{i}" for i in range(300)], "at most"),
    ],
)
async def test_bad_tags_are_refused_before_anything_is_written(
    redis_url: str, tags: Any, message: str
) -> None:
    async with AsyncCache() as local, cache_on(redis_url) as shared:
        for ns in (local.namespace("n"), shared.namespace("n", shared_policy())):
            with pytest.raises(InvalidKeyError, match=message):
                await ns.set("k", 1, tags=tags)
            with pytest.raises(InvalidKeyError, match=message):
                await ns.get_or_load("k", returning_async(1), tags=tags)
            assert await ns.get("k") is None
    with redis.Redis.from_url(redis_url) as client:
        assert client.dbsize() == 0


# --- a process that starts after the fleet invalidated everything ----------------------------


async def test_a_process_started_after_invalidate_all_does_not_serve_old_entries(
    redis_url: str,
) -> None:
    async with cache_on(redis_url) as first:
        a = first.namespace("n", shared_policy())
        await a.set("k", "old")
        await a.invalidate_all()
    async with cache_on(redis_url) as later:
        b = later.namespace("n", shared_policy())
        assert await b.get("k") is None
        assert await b.get_or_load("k", returning_async("new")) == "new"


async def test_a_generation_bump_without_a_backplane_message_is_learnt_within_seconds(
    redis_url: str,
) -> None:
    async with cache_on(redis_url) as cache:
        ns = cache.namespace("n", shared_policy())
        await ns.set("k", "old")
        assert await ns.get("k") == "old"
        with redis.Redis.from_url(redis_url) as client:
            client.hset("sc:marks:{n}", "g", 5)  # another process's bump, its message lost
        deadline = time.monotonic() + 3.0
        while await ns.get("k") is not None:
            assert time.monotonic() < deadline, "the generation was never re-read"
            await asyncio.sleep(0.05)
