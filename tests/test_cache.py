from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from steadycache import (
    Cache,
    InvalidKeyError,
    LoaderError,
    MissingScopeError,
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
from tests.conftest import ManualClock, ScriptedRandom

PERSONAL = Policy(
    sensitivity=Sensitivity.PERSONAL,
    security=Security(scope=Scope("tenant_id", "user_id"), hash_keys=True),
)


def test_set_get_delete(cache: Cache) -> None:
    ns = cache.namespace("things")
    ns.set("a", {"x": [1, 2]})
    assert ns.get("a") == {"x": [1, 2]}
    assert ns.get("missing", "default") == "default"
    assert ns.delete("a") is True
    assert ns.get("a") is None


def test_cached_copy_is_independent_of_the_callers_object(cache: Cache) -> None:
    ns = cache.namespace("things")
    value = {"seats": [1, 2]}
    ns.set("a", value)
    value["seats"].append(3)
    assert ns.get("a") == {"seats": [1, 2]}


def test_ttl_expiry_with_jitter(cache: Cache, clock: ManualClock, rand: ScriptedRandom) -> None:
    ns = cache.namespace("t", Policy(invalidation=Ttl(100, jitter=0.2)))
    rand.value = 0.5  # lifetime 100 * (1 - 0.2 * 0.5) = 90 s
    ns.set("a", 1)
    clock.advance(89.9)
    assert ns.get("a") == 1
    clock.advance(0.2)
    assert ns.get("a") is None
    assert ns.stats().misses == 1


def test_entries_written_together_expire_apart(clock: ManualClock) -> None:
    import random

    source = random.Random(7)
    with Cache(clock=clock, random=source.random) as cache:
        ns = cache.namespace("seats", Policy(invalidation=Ttl(60)))  # default jitter 10%
        ns.set_many({f"w{i}": i for i in range(100)})
        expiries = [ns.get_entry(f"w{i}").fresh_until for i in range(100)]  # type: ignore[union-attr]
        spread = max(expiries) - min(expiries)
        assert 4.0 < spread <= 6.0  # spread over ~10% of the TTL, not one instant


def test_per_call_ttl(cache: Cache, clock: ManualClock) -> None:
    ns = cache.namespace("t", Policy(invalidation=Ttl(100, jitter=0)))
    ns.set("a", 1, ttl=5)
    clock.advance(6)
    assert ns.get("a") is None


def test_many(cache: Cache) -> None:
    ns = cache.namespace("m")
    ns.set_many({"a": 1, "b": 2})
    assert ns.get_many(["a", "x", "b"], default=0) == [1, 0, 2]


def test_set_many_validates_everything_before_writing(cache: Cache) -> None:
    ns = cache.namespace("m")
    with pytest.raises(SerializationError):
        ns.set_many({"a": 1, "b": object()})
    assert ns.get("a") is None


def test_bad_values_raise_before_anything_is_written(cache: Cache) -> None:
    ns = cache.namespace("v", Policy(sizing=Sizing(max_value_bytes=100)))
    with pytest.raises(SerializationError, match="not JSON-serialisable"):
        ns.set("a", {1, 2})
    with pytest.raises(ValueTooLargeError, match="over the limit of 100 bytes") as caught:
        ns.set("a", "x" * 200)
    assert caught.value.size > 100
    assert ns.store.stats().sets == 0


def test_scope_is_mandatory_and_isolating(cache: Cache) -> None:
    ns = cache.namespace("profile", PERSONAL)
    with pytest.raises(MissingScopeError, match="user_id"):
        ns.set("p", 1, scope={"tenant_id": 1})
    assert ns.store.stats().sets == 0
    ns.set("p", "alice", scope={"tenant_id": 1, "user_id": 1})
    ns.set("p", "bob", scope={"tenant_id": 1, "user_id": 2})
    assert ns.get("p", scope={"tenant_id": 1, "user_id": 1}) == "alice"
    assert ns.get("p", scope={"tenant_id": 1, "user_id": 2}) == "bob"
    with pytest.raises(MissingScopeError):
        ns.get("p")


def test_personal_key_material_never_reaches_the_store(cache: Cache) -> None:
    ns = cache.namespace("profile", PERSONAL)
    ns.set("alice@example.com", 1, scope={"tenant_id": "acme", "user_id": "alice@example.com"})
    stored_keys = list(ns.store._data)  # type: ignore[attr-defined]
    assert len(stored_keys) == 1
    assert "alice" not in stored_keys[0]
    assert "acme" not in stored_keys[0]


def test_get_or_load_loads_once_then_hits(cache: Cache) -> None:
    ns = cache.namespace("rt", Policy(pattern=ReadThrough()))
    calls: list[int] = []

    def load() -> int:
        calls.append(1)
        return 42

    assert ns.get_or_load("k", load) == 42
    assert ns.get_or_load("k", load) == 42
    assert len(calls) == 1
    stats = ns.stats()
    assert (stats.hits, stats.misses, stats.loads) == (1, 1, 1)


def test_loader_error_is_wrapped_chained_and_not_cached(cache: Cache) -> None:
    ns = cache.namespace("rt")

    def broken() -> int:
        raise ConnectionError("db down")

    with pytest.raises(LoaderError, match="db down") as caught:
        ns.get_or_load("k", broken)
    assert isinstance(caught.value.__cause__, ConnectionError)
    assert caught.value.namespace == "rt"
    assert ns.get_or_load("k", lambda: 1) == 1
    assert ns.stats().load_errors == 1


def test_loader_failure_is_logged(cache: Cache, caplog: pytest.LogCaptureFixture) -> None:
    ns = cache.namespace("rt")
    with caplog.at_level(logging.WARNING, logger="steadycache"), pytest.raises(LoaderError):
        ns.get_or_load("k", lambda: 1 / 0)
    assert "loader failed" in caplog.text


def test_stale_if_error_serves_stale_within_bound(cache: Cache, clock: ManualClock) -> None:
    ns = cache.namespace(
        "sie",
        Policy(
            invalidation=Ttl(10, jitter=0),
            stampede=Stampede(stale_if_error=StaleIfError(30), early_refresh=None),
        ),
    )
    ns.get_or_load("k", lambda: "v1")

    def broken() -> str:
        raise TimeoutError("db slow")

    clock.advance(20)
    assert ns.get_or_load("k", broken) == "v1"
    assert ns.stats().stale_served_on_error == 1
    clock.advance(25)  # 45 s after write: beyond fresh (10) + stale-if-error (30)
    with pytest.raises(LoaderError):
        ns.get_or_load("k", broken)


def test_stale_while_revalidate_refreshes_in_background(clock: ManualClock) -> None:
    with Cache(clock=clock) as cache:
        ns = cache.namespace(
            "swr",
            Policy(
                invalidation=Ttl(10, jitter=0),
                stampede=Stampede(stale_while_revalidate=StaleWhileRevalidate(30)),
            ),
        )
        ns.get_or_load("k", lambda: "v1")
        clock.advance(15)
        assert ns.get_or_load("k", lambda: "v2") == "v1"  # stale, refresh started
        cache.close()  # waits for the background refresh
        assert ns.get("k") == "v2"
        stats = ns.stats()
        assert stats.stale_served == 1
        assert stats.background_refreshes == 1


def test_early_refresh_serves_and_reloads(clock: ManualClock, rand: ScriptedRandom) -> None:
    with Cache(clock=clock, random=rand) as cache:
        ns = cache.namespace("xf", Policy(invalidation=Ttl(10, jitter=0)))
        ns.get_or_load("k", lambda: "v1")
        ns.get_entry("k").load_cost = 1.0  # type: ignore[union-attr]
        clock.advance(9.5)
        rand.value = 0.1  # -ln(0.1) = 2.3 >= 0.5 s left: refresh early
        assert ns.get_or_load("k", lambda: "v2") == "v1"
        cache.close()
        assert ns.get("k") == "v2"
        assert ns.stats().early_refreshes == 1


def test_cache_aside_get_treats_early_refresh_as_a_miss(
    cache: Cache, clock: ManualClock, rand: ScriptedRandom
) -> None:
    ns = cache.namespace("xf", Policy(invalidation=Ttl(10, jitter=0)))
    ns.set("k", "v")
    ns.get_entry("k").load_cost = 1.0  # type: ignore[union-attr]
    clock.advance(9.5)
    rand.value = 0.1
    assert ns.get("k") is None
    rand.value = 0.9  # -ln(0.9) = 0.1 < 0.5: serve
    assert ns.get("k") == "v"


def test_invalidate_all(cache: Cache) -> None:
    ns = cache.namespace("inv")
    ns.set("a", 1)
    ns.set("b", 2)
    assert ns.invalidate_all() == 2
    assert ns.get("a") is None
    ns.set("a", 3)
    assert ns.get("a") == 3
    assert ns.get_entry("a") is not None


def test_namespace_redefinition_with_other_policy_is_refused(cache: Cache) -> None:
    cache.namespace("n", Policy(invalidation=Ttl(5)))
    assert cache.namespace("n") is cache.namespace("n")
    with pytest.raises(UsageError, match="already exists"):
        cache.namespace("n", Policy(invalidation=Ttl(6)))


def test_cached_decorator_uses_scope_arguments(cache: Cache) -> None:
    calls: list[tuple[Any, ...]] = []

    @cache.cached("profile", PERSONAL)
    def profile(tenant_id: int, user_id: int, detail: bool = False) -> dict[str, int]:
        calls.append((tenant_id, user_id, detail))
        return {"user": user_id}

    assert profile(1, 7) == {"user": 7}
    assert profile(tenant_id=1, user_id=7) == {"user": 7}
    assert profile(1, 8) == {"user": 8}
    assert profile(1, 7, detail=True) == {"user": 7}
    assert calls == [(1, 7, False), (1, 8, False), (1, 7, True)]


def test_cached_decorator_rejects_async_functions(cache: Cache) -> None:
    async def fetch(x: int) -> int:
        return x

    with pytest.raises(UsageError, match=r"AsyncCache\.cached"):
        cache.cached("a")(fetch)


def test_cached_decorator_checks_scope_parameters_at_decoration(cache: Cache) -> None:
    with pytest.raises(UsageError, match="user_id"):

        @cache.cached("p", PERSONAL)
        def profile(tenant_id: int) -> int:
            return tenant_id


def test_cached_decorator_custom_key(cache: Cache) -> None:
    calls: list[int] = []

    @cache.cached("custom", key=lambda obj, n: ("obj", n))
    def compute(obj: object, n: int) -> int:
        calls.append(n)
        return n * 2

    assert compute(object(), 2) == 4
    assert compute(object(), 2) == 4
    assert calls == [2]


def test_uncacheable_argument_is_a_clear_error(cache: Cache) -> None:
    @cache.cached("f")
    def f(x: object) -> int:
        return 1

    with pytest.raises(InvalidKeyError, match="no canonical encoding"):
        f([1, 2])


def test_stats_snapshot_and_rolling_ratio(cache: Cache, clock: ManualClock) -> None:
    ns = cache.namespace(
        "s", Policy(observability=__import__("steadycache").Observability(rolling_window=10))
    )
    ns.set("a", 1)
    for _ in range(3):
        ns.get("a")
    ns.get("b")
    stats = ns.stats()
    assert stats.hit_ratio == 0.75
    assert stats.rolling_hit_ratio == 0.75
    clock.advance(11)
    for _ in range(4):
        ns.get("b")
    clock.advance(1)
    later = ns.stats()
    assert later.hit_ratio == 3 / 8
    assert later.rolling_hit_ratio == 0.0  # only the last 10 s: four misses
    assert later.tiers[0].entries == 1
    assert cache.stats()["s"].hits == 3


def test_live_cache_records_a_sampled_trace_of_key_hashes(tmp_path: Path) -> None:
    from steadycache.sizing.capture import TraceRecorder
    from steadycache.sizing.trace_file import read_capture

    path = tmp_path / "live.sctrace"
    with TraceRecorder(path, sample_rate=1.0) as recorder, Cache(trace=recorder) as cache:
        ns = cache.namespace("users")
        ns.set("alice@example.com", {"plan": "pro"})
        ns.get("alice@example.com")
        ns.get("bob@example.com")
        ns.get_or_load("carol@example.com", lambda: 1)
    captured = read_capture(path)
    assert len(captured.hits) == 3
    assert captured.hits.tolist() == [True, False, False]
    assert b"alice" not in path.read_bytes()  # key hashes only
