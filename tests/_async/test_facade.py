"""The facades' cache-aside and read-through behaviour, one source for both forms.

Keys, scopes, values and lifetimes; loads and their errors; stale-if-error, stale-while-
revalidate and early refresh; the ``cached`` decorator; stats and traces. What exists in
one form only (each decorator refusing the other kind of function, the async namespace
refusing a sync loader) is in tests/test_cache.py and tests/test_async_cache.py.
"""

from __future__ import annotations

import logging
import pickle
import random
import sys
import types
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from steadycache import (
    AsyncCache,
    CacheAside,
    CacheStats,
    InvalidKeyError,
    LoaderError,
    MissingScopeError,
    Observability,
    Policy,
    ReadThrough,
    Scope,
    Security,
    Sensitivity,
    SerializationError,
    Sizing,
    StaleIfError,
    StaleWhileRevalidate,
    Stampede,
    Ttl,
    UsageError,
    ValueTooLargeError,
)
from steadycache.stores.memory import MemoryStore
from tests.concurrency import failing_async, returning_async, until_async
from tests.conftest import ManualClock, ScriptedRandom

PERSONAL = Policy(
    sensitivity=Sensitivity.PERSONAL,
    security=Security(scope=Scope("tenant_id", "user_id"), hash_keys=True),
)


@pytest.fixture
async def cache(clock: ManualClock, rand: ScriptedRandom) -> AsyncIterator[AsyncCache]:
    """This form's cache on the injected clock and random source."""
    async with AsyncCache(clock=clock, random=rand) as instance:
        yield instance


# --- cache-aside ------------------------------------------------------------------------------


async def test_set_get_delete(cache: AsyncCache) -> None:
    ns = cache.namespace("things")
    await ns.set("a", {"x": [1, 2]})
    assert await ns.get("a") == {"x": [1, 2]}
    assert await ns.get("missing", "default") == "default"
    assert await ns.delete("a") is True
    assert await ns.get("a") is None


async def test_set_get_delete_many(clock: ManualClock) -> None:
    async with AsyncCache(clock=clock) as cache:
        ns = cache.namespace("a")
        await ns.set("k", [1])
        assert await ns.get("k") == [1]
        await ns.set_many({"x": 1, "y": 2})
        assert await ns.get_many(["x", "z", "y"]) == [1, None, 2]
        assert await ns.delete("k")
        assert await ns.get("k", "gone") == "gone"
        assert await ns.invalidate_all() == 2


async def test_cached_copy_is_independent_of_the_callers_object(cache: AsyncCache) -> None:
    ns = cache.namespace("things")
    value = {"seats": [1, 2]}
    await ns.set("a", value)
    value["seats"].append(3)
    assert await ns.get("a") == {"seats": [1, 2]}


async def test_ttl_expiry_with_jitter(
    cache: AsyncCache, clock: ManualClock, rand: ScriptedRandom
) -> None:
    ns = cache.namespace("t", Policy(invalidation=Ttl(100, jitter=0.2)))
    rand.value = 0.5  # lifetime 100 * (1 - 0.2 * 0.5) = 90 s
    await ns.set("a", 1)
    clock.advance(89.9)
    assert await ns.get("a") == 1
    clock.advance(0.2)
    assert await ns.get("a") is None
    assert ns.stats().misses == 1


async def test_entries_written_together_expire_apart(clock: ManualClock) -> None:
    source = random.Random(7)
    async with AsyncCache(clock=clock, random=source.random) as cache:
        ns = cache.namespace("seats", Policy(invalidation=Ttl(60)))  # default jitter 10%
        await ns.set_many({f"w{i}": i for i in range(100)})
        entries = [await ns.get_entry(f"w{i}") for i in range(100)]
        expiries = [entry.fresh_until for entry in entries if entry is not None]
        assert len(expiries) == 100
        spread = max(expiries) - min(expiries)
        assert 4.0 < spread <= 6.0  # spread over ~10% of the TTL, not one instant


async def test_per_call_ttl(cache: AsyncCache, clock: ManualClock) -> None:
    ns = cache.namespace("t", Policy(invalidation=Ttl(100, jitter=0)))
    await ns.set("a", 1, ttl=5)
    clock.advance(6)
    assert await ns.get("a") is None


async def test_many(cache: AsyncCache) -> None:
    ns = cache.namespace("m")
    await ns.set_many({"a": 1, "b": 2})
    assert await ns.get_many(["a", "x", "b"], default=0) == [1, 0, 2]


async def test_set_many_validates_everything_before_writing(cache: AsyncCache) -> None:
    ns = cache.namespace("m")
    with pytest.raises(SerializationError):
        await ns.set_many({"a": 1, "b": object()})
    assert await ns.get("a") is None


async def test_bad_values_raise_before_anything_is_written(cache: AsyncCache) -> None:
    ns = cache.namespace("v", Policy(sizing=Sizing(max_value_bytes=100)))
    with pytest.raises(SerializationError, match="not JSON-serialisable"):
        await ns.set("a", {1, 2})
    with pytest.raises(ValueTooLargeError, match="over the limit of 100 bytes") as caught:
        await ns.set("a", "x" * 200)
    assert caught.value.size > 100
    assert ns.store.stats().sets == 0


async def test_scope_is_mandatory_and_isolating(cache: AsyncCache) -> None:
    ns = cache.namespace("profile", PERSONAL)
    with pytest.raises(MissingScopeError, match="user_id"):
        await ns.set("p", 1, scope={"tenant_id": 1})
    assert ns.store.stats().sets == 0
    await ns.set("p", "alice", scope={"tenant_id": 1, "user_id": 1})
    await ns.set("p", "bob", scope={"tenant_id": 1, "user_id": 2})
    assert await ns.get("p", scope={"tenant_id": 1, "user_id": 1}) == "alice"
    assert await ns.get("p", scope={"tenant_id": 1, "user_id": 2}) == "bob"
    with pytest.raises(MissingScopeError):
        await ns.get("p")


async def test_personal_key_material_never_reaches_the_store(cache: AsyncCache) -> None:
    ns = cache.namespace("profile", PERSONAL)
    await ns.set(
        "alice@example.com", 1, scope={"tenant_id": "acme", "user_id": "alice@example.com"}
    )
    stored_keys = list(cast("MemoryStore", ns.store)._data)
    assert len(stored_keys) == 1
    assert "alice" not in stored_keys[0]
    assert "acme" not in stored_keys[0]


async def test_invalidate_all(cache: AsyncCache) -> None:
    ns = cache.namespace("inv")
    await ns.set("a", 1)
    await ns.set("b", 2)
    assert await ns.invalidate_all() == 2
    assert await ns.get("a") is None
    await ns.set("a", 3)
    assert await ns.get("a") == 3
    assert await ns.get_entry("a") is not None


async def test_namespace_redefinition_with_other_policy_is_refused(cache: AsyncCache) -> None:
    cache.namespace("n", Policy(invalidation=Ttl(5)))
    assert cache.namespace("n") is cache.namespace("n")
    with pytest.raises(UsageError, match="already exists"):
        cache.namespace("n", Policy(invalidation=Ttl(6)))


# --- read-through -----------------------------------------------------------------------------


async def test_get_or_load_loads_once_then_hits(cache: AsyncCache) -> None:
    ns = cache.namespace("rt", Policy(pattern=ReadThrough()))
    calls: list[int] = []
    load = returning_async(42, calls)
    assert await ns.get_or_load("k", load) == 42
    assert await ns.get_or_load("k", load) == 42
    assert len(calls) == 1
    stats = ns.stats()
    assert (stats.hits, stats.misses, stats.loads) == (1, 1, 1)


async def test_loader_error_is_wrapped_chained_and_not_cached(cache: AsyncCache) -> None:
    ns = cache.namespace("rt")
    with pytest.raises(LoaderError, match="db down") as caught:
        await ns.get_or_load("k", failing_async(ConnectionError("db down")))
    assert isinstance(caught.value.__cause__, ConnectionError)
    assert caught.value.namespace == "rt"
    assert await ns.get_or_load("k", returning_async(1)) == 1
    assert ns.stats().load_errors == 1


async def test_loader_failure_is_logged(
    cache: AsyncCache, caplog: pytest.LogCaptureFixture
) -> None:
    ns = cache.namespace("rt")
    with caplog.at_level(logging.WARNING, logger="steadycache"), pytest.raises(LoaderError):
        await ns.get_or_load("k", failing_async(ZeroDivisionError("division by zero")))
    assert "loader failed" in caplog.text


async def test_stale_if_error_serves_stale_within_bound(
    cache: AsyncCache, clock: ManualClock
) -> None:
    ns = cache.namespace(
        "sie",
        Policy(
            invalidation=Ttl(10, jitter=0),
            stampede=Stampede(stale_if_error=StaleIfError(30), early_refresh=None),
        ),
    )
    await ns.get_or_load("k", returning_async("v1"))
    broken = failing_async(TimeoutError("db slow"))
    clock.advance(20)
    assert await ns.get_or_load("k", broken) == "v1"
    assert ns.stats().stale_served_on_error == 1
    clock.advance(25)  # 45 s after write: beyond fresh (10) + stale-if-error (30)
    with pytest.raises(LoaderError):
        await ns.get_or_load("k", broken)


async def test_stale_while_revalidate_refreshes_in_background(clock: ManualClock) -> None:
    async with AsyncCache(clock=clock) as cache:
        ns = cache.namespace(
            "swr",
            Policy(
                invalidation=Ttl(10, jitter=0),
                stampede=Stampede(stale_while_revalidate=StaleWhileRevalidate(30)),
            ),
        )
        await ns.get_or_load("k", returning_async("v1"))
        clock.advance(15)
        assert await ns.get_or_load("k", returning_async("v2")) == "v1"  # stale, refresh started
        await cache.aclose()  # waits for the background refresh
        assert await ns.get("k") == "v2"
        stats = ns.stats()
        assert stats.stale_served == 1
        assert stats.background_refreshes == 1


async def test_stale_if_error_and_swr(clock: ManualClock) -> None:
    async with AsyncCache(clock=clock) as cache:
        ns = cache.namespace(
            "s",
            Policy(
                invalidation=Ttl(10, jitter=0),
                stampede=Stampede(
                    stale_while_revalidate=StaleWhileRevalidate(5),
                    stale_if_error=StaleIfError(60),
                    early_refresh=None,
                ),
            ),
        )
        broken = failing_async(RuntimeError("x"))
        await ns.get_or_load("k", returning_async("v1"))
        clock.advance(12)  # stale, within revalidation: served, refresh fails in background
        assert await ns.get_or_load("k", broken) == "v1"
        stored = ns.stored_key("k")
        await until_async(lambda: not ns._flights.in_flight(stored))
        clock.advance(10)  # beyond revalidation, within stale-if-error
        assert await ns.get_or_load("k", broken) == "v1"
        stats = ns.stats()
        assert stats.stale_served == 1
        assert stats.stale_served_on_error == 1
        assert stats.load_errors == 2


async def test_early_refresh_serves_and_reloads(clock: ManualClock, rand: ScriptedRandom) -> None:
    async with AsyncCache(clock=clock, random=rand) as cache:
        ns = cache.namespace("xf", Policy(invalidation=Ttl(10, jitter=0)))
        await ns.get_or_load("k", returning_async("v1"))
        entry = await ns.get_entry("k")
        assert entry is not None
        entry.load_cost = 1.0
        clock.advance(9.5)
        rand.value = 0.1  # -ln(0.1) = 2.3 >= 0.5 s left: refresh early
        assert await ns.get_or_load("k", returning_async("v2")) == "v1"
        await cache.aclose()
        assert await ns.get("k") == "v2"
        assert ns.stats().early_refreshes == 1


async def test_cache_aside_get_treats_early_refresh_as_a_miss(
    cache: AsyncCache, clock: ManualClock, rand: ScriptedRandom
) -> None:
    ns = cache.namespace("xf", Policy(invalidation=Ttl(10, jitter=0)))
    await ns.set("k", "v")
    entry = await ns.get_entry("k")
    assert entry is not None
    entry.load_cost = 1.0
    clock.advance(9.5)
    rand.value = 0.1
    assert await ns.get("k") is None
    rand.value = 0.9  # -ln(0.9) = 0.1 < 0.5: serve
    assert await ns.get("k") == "v"


# --- the cached decorator ---------------------------------------------------------------------


async def test_cached_decorator_uses_scope_arguments(cache: AsyncCache) -> None:
    calls: list[tuple[Any, ...]] = []

    @cache.cached("profile", PERSONAL)
    async def profile(tenant_id: int, user_id: int, detail: bool = False) -> dict[str, int]:
        calls.append((tenant_id, user_id, detail))
        return {"user": user_id}

    assert await profile(1, 7) == {"user": 7}
    assert await profile(tenant_id=1, user_id=7) == {"user": 7}
    assert await profile(1, 8) == {"user": 8}
    assert await profile(1, 7, detail=True) == {"user": 7}
    assert calls == [(1, 7, False), (1, 8, False), (1, 7, True)]


async def test_cached_decorator_with_a_one_dimension_scope(clock: ManualClock) -> None:
    async with AsyncCache(clock=clock) as cache:
        calls: list[int] = []

        @cache.cached(
            "p",
            Policy(
                sensitivity=Sensitivity.PERSONAL,
                security=Security(scope=Scope("user_id"), hash_keys=True),
            ),
        )
        async def profile(user_id: int) -> dict[str, int]:
            calls.append(user_id)
            return {"id": user_id}

        assert await profile(1) == {"id": 1}
        assert await profile(user_id=1) == {"id": 1}
        assert calls == [1]
        with pytest.raises(MissingScopeError):
            await cache.namespace("p").get("k")


async def test_cached_decorator_checks_scope_parameters_at_decoration(cache: AsyncCache) -> None:
    with pytest.raises(UsageError, match="user_id"):

        @cache.cached("p", PERSONAL)
        async def profile(tenant_id: int) -> int:
            return tenant_id


async def test_cached_decorator_custom_key(cache: AsyncCache) -> None:
    calls: list[int] = []

    @cache.cached("custom", key=lambda obj, n: ("obj", n))
    async def compute(obj: object, n: int) -> int:
        calls.append(n)
        return n * 2

    assert await compute(object(), 2) == 4
    assert await compute(object(), 2) == 4
    assert calls == [2]


async def test_uncacheable_argument_is_a_clear_error(cache: AsyncCache) -> None:
    @cache.cached("f")
    async def f(x: object) -> int:
        return 1

    with pytest.raises(InvalidKeyError, match="no canonical encoding"):
        await f([1, 2])


async def test_bare_cached_uses_the_default_namespace(cache: AsyncCache) -> None:
    calls: list[int] = []

    @cache.cached
    async def double(n: int) -> int:
        calls.append(n)
        return 2 * n

    @cache.cached()
    async def triple(n: int) -> int:
        return 3 * n

    assert await double(2) == 4
    assert await double(n=2) == 4
    assert calls == [2]
    assert await triple(2) == 6  # one namespace, each function its own keys
    assert AsyncCache.DEFAULT_NAMESPACE == "default"
    assert double.namespace is cache.namespace("default")
    assert triple.namespace is double.namespace
    assert double.key(2) != triple.key(2)
    assert double.__name__ == "double"
    with pytest.raises(UsageError, match="name the namespace first"):
        cache.cached(double, Policy())  # type: ignore[call-overload]


async def test_a_cached_function_pickles_by_reference(
    cache: AsyncCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = types.ModuleType("cached_probe")
    monkeypatch.setitem(sys.modules, "cached_probe", module)

    async def lookup(n: int) -> int:
        return n

    lookup.__module__, lookup.__qualname__ = "cached_probe", "lookup"
    module.lookup = cache.cached(lookup)  # type: ignore[attr-defined]
    assert pickle.loads(pickle.dumps(module.lookup)) is module.lookup


async def test_a_cached_method_leaves_self_out_of_the_key(cache: AsyncCache) -> None:
    calls: list[tuple[str, int]] = []

    class Repository:
        def __init__(self, name: str) -> None:
            self.name = name

        @cache.cached("rows")
        async def find(self, row: int) -> str:
            calls.append((self.name, row))
            return f"row {row}"

    first, second = Repository("a"), Repository("b")
    assert await first.find(1) == "row 1"
    assert await second.find(1) == "row 1"  # another instance, the same entry
    assert await second.find(row=2) == "row 2"
    assert calls == [("a", 1), ("b", 2)]
    rows = cache.namespace("rows")
    identity = f"{__name__}.{Repository.find.__qualname__}"
    assert first.find.key(1) == second.find.key(1) == rows.stored_key((identity, 1))
    assert first.find.namespace is rows
    assert await first.find.invalidate(1) is True
    assert await second.find(1) == "row 1"
    assert calls[-1] == ("b", 1)  # loaded again, by the instance that asked


async def test_instance_key_keys_a_method_per_instance(cache: AsyncCache) -> None:
    class Tenant:
        def __init__(self, name: str) -> None:
            self.name = name

        @cache.cached("plans", instance_key=lambda tenant: tenant.name)
        async def plan(self, user: int) -> str:
            return f"{self.name}/{user}"

    assert await Tenant("acme").plan(1) == "acme/1"
    assert await Tenant("initech").plan(1) == "initech/1"  # not acme's entry
    assert Tenant("acme").plan.key(1) == Tenant("acme").plan.key(1)
    assert Tenant("acme").plan.key(1) != Tenant("initech").plan.key(1)

    async def lookup(self: object, user: int) -> int:
        return user

    with pytest.raises(UsageError, match="not both"):
        cache.cached("plans", key=lambda *args: args[1:], instance_key=id)(lookup)


async def test_cached_static_and_class_methods(cache: AsyncCache) -> None:
    calls: list[str] = []

    class Prices:
        currency = "EUR"

        @cache.cached("prices")
        @staticmethod
        async def base(sku: str) -> int:
            calls.append(f"base {sku}")
            return len(sku)

        @staticmethod
        @cache.cached("prices")
        async def tax(sku: str) -> int:
            calls.append(f"tax {sku}")
            return 1

        @cache.cached("prices")
        @classmethod
        async def label(cls, sku: str) -> str:
            calls.append(f"label {sku}")
            return f"{sku} in {cls.currency}"

    class Dollars(Prices):
        currency = "USD"

    assert await Prices.base("ab") == 2
    assert await Prices().base("ab") == 2
    assert await Prices.tax("ab") == 1
    assert await Prices().tax("ab") == 1
    assert await Prices.label("ab") == "ab in EUR"
    assert await Prices().label("ab") == "ab in EUR"
    assert await Dollars.label("ab") == "ab in EUR"  # cls is not in the key (documented)
    assert calls == ["base ab", "tax ab", "label ab"]
    assert Prices.base.key("ab") == Prices().base.key("ab")
    assert Prices.label.key("ab") == Prices().label.key("ab") == Dollars.label.key("ab")

    async def length(sku: str) -> int:
        return len(sku)

    with pytest.raises(UsageError, match="no instance to key"):
        cache.cached("prices", instance_key=id)(staticmethod(length))


async def test_cached_keys_floats_and_dates_and_refuses_nan(cache: AsyncCache) -> None:
    calls: list[float] = []

    @cache.cached("fx")
    async def convert(amount: float, on: date, at: datetime | None = None) -> float:
        calls.append(amount)
        return amount * 2

    day = date(2026, 5, 1)
    noon = datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert await convert(1.5, day) == 3.0
    assert await convert(1.5, on=day) == 3.0
    assert await convert(1.5, day, noon) == 3.0  # another key
    assert calls == [1.5, 1.5]
    identity = f"{__name__}.{convert.__qualname__}"
    assert convert.key(1.5, day) == cache.namespace("fx").stored_key((identity, 1.5, day, None))
    assert ":f1.5:d2026-05-01:n" in convert.key(1.5, day)
    with pytest.raises(InvalidKeyError, match="NaN"):
        await convert(float("nan"), day)
    assert calls == [1.5, 1.5]  # refused before the function ran


# --- patterns ---------------------------------------------------------------------------------


async def test_a_cache_aside_namespace_chosen_on_purpose_refuses_loaders(
    cache: AsyncCache,
) -> None:
    ns = cache.namespace("aside", Policy(pattern=CacheAside()))
    calls: list[int] = []
    with pytest.raises(UsageError, match="ReadThrough"):
        await ns.get_or_load("k", returning_async(1, calls))
    with pytest.raises(UsageError, match="cache-aside"):
        await ns.warm([("k", returning_async(1, calls))])
    with pytest.raises(UsageError, match="cache-aside"):

        @cache.cached(ns)
        async def load(k: str) -> int:
            return 1

    assert calls == []
    await ns.set("k", 1)  # what it is for: the application loads and writes
    assert await ns.get("k") == 1
    # The pattern left at its default lets both styles run; ReadThrough() loads.
    assert await cache.namespace("either").get_or_load("k", returning_async(2)) == 2
    read_through = cache.namespace("rt", Policy(pattern=ReadThrough()))
    assert await read_through.get_or_load("k", returning_async(3)) == 3


# --- observability ----------------------------------------------------------------------------


async def test_stats_snapshot_and_rolling_ratio(cache: AsyncCache, clock: ManualClock) -> None:
    ns = cache.namespace("s", Policy(observability=Observability(rolling_window=10)))
    await ns.set("a", 1)
    for _ in range(3):
        await ns.get("a")
    await ns.get("b")
    stats = ns.stats()
    assert stats.hit_ratio == 0.75
    assert stats.rolling_hit_ratio == 0.75
    clock.advance(11)
    for _ in range(4):
        await ns.get("b")
    clock.advance(1)
    later = ns.stats()
    assert later.hit_ratio == 3 / 8
    assert later.rolling_hit_ratio == 0.0  # only the last 10 s: four misses
    assert later.tiers[0].entries == 1
    assert cache.stats()["s"].hits == 3


async def test_cache_stats_read_like_a_namespace_s(cache: AsyncCache) -> None:
    a, b = cache.namespace("a"), cache.namespace("b")
    await a.set("k", 1)
    await a.get("k")
    await b.get("k")
    await b.get("k")
    stats = cache.stats()
    assert isinstance(stats, CacheStats)
    assert isinstance(stats, Mapping)
    assert set(stats) == {"a", "b"}
    assert (stats["a"].hits, stats["b"].misses) == (1, 2)
    assert (stats.hits, stats.misses, stats.sets) == (1, 2, 1)  # totals, read as one ns's
    assert stats.counters.keys() == a.stats().counters.keys()
    assert stats.hit_ratio == 1 / 3
    with pytest.raises(AttributeError):
        _ = stats.no_such_counter


async def test_live_cache_records_a_sampled_trace_of_key_hashes(tmp_path: Path) -> None:
    from steadycache.sizing.capture import TraceRecorder
    from steadycache.sizing.trace_file import read_capture

    path = tmp_path / "live.sctrace"
    with TraceRecorder(path, sample_rate=1.0) as recorder:
        cache = AsyncCache(trace=recorder)
        async with cache:  # closed before the recorder, as a service shuts down
            ns = cache.namespace("users")
            await ns.set("alice@example.com", {"plan": "pro"})
            await ns.get("alice@example.com")
            await ns.get("bob@example.com")
            await ns.get_or_load("carol@example.com", returning_async(1))
    captured = read_capture(path)
    assert len(captured.hits) == 3
    assert captured.hits.tolist() == [True, False, False]
    assert b"alice" not in path.read_bytes()  # key hashes only
