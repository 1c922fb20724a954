from __future__ import annotations

import asyncio

import pytest

from steadycache import (
    AsyncCache,
    LoaderError,
    MissingScopeError,
    Policy,
    Scope,
    Security,
    Sensitivity,
    StaleIfError,
    StaleWhileRevalidate,
    Stampede,
    Ttl,
    UsageError,
)
from tests.conftest import ManualClock


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


async def test_single_flight_coalesces_a_burst(clock: ManualClock) -> None:
    async with AsyncCache(clock=clock) as cache:
        ns = cache.namespace("burst")
        calls = 0

        async def load() -> int:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.02)
            return 7

        results = await asyncio.gather(*[ns.get_or_load("hot", load) for _ in range(300)])
        assert set(results) == {7}
        assert calls == 1
        assert ns.stats().coalesced == 299


async def test_loader_error_reaches_every_waiter_and_is_not_cached(clock: ManualClock) -> None:
    async with AsyncCache(clock=clock) as cache:
        ns = cache.namespace("err")
        calls = 0

        async def broken() -> int:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.01)
            raise ConnectionError("down")

        results = await asyncio.gather(
            *[ns.get_or_load("k", broken) for _ in range(50)], return_exceptions=True
        )
        assert calls == 1
        assert all(isinstance(r, LoaderError) for r in results)
        assert all(isinstance(r.__cause__, ConnectionError) for r in results)  # type: ignore[union-attr]

        async def works() -> int:
            return 1

        assert await ns.get_or_load("k", works) == 1


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

        async def v1() -> str:
            return "v1"

        async def broken() -> str:
            raise RuntimeError("x")

        await ns.get_or_load("k", v1)
        clock.advance(12)  # stale, within revalidation: served, refresh fails in background
        assert await ns.get_or_load("k", broken) == "v1"
        await asyncio.sleep(0.01)
        clock.advance(10)  # beyond revalidation, within stale-if-error
        assert await ns.get_or_load("k", broken) == "v1"
        stats = ns.stats()
        assert stats.stale_served == 1
        assert stats.stale_served_on_error == 1
        assert stats.load_errors == 2


async def test_cached_decorator_and_kind_checks(clock: ManualClock) -> None:
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

        def sync_fn(x: int) -> int:
            return x

        with pytest.raises(UsageError, match=r"Cache\.cached"):
            cache.cached("q")(sync_fn)  # type: ignore[arg-type]
        with pytest.raises(MissingScopeError):
            await cache.namespace("p").get("k")


async def test_sync_loader_given_to_async_namespace_is_a_usage_error(clock: ManualClock) -> None:
    async with AsyncCache(clock=clock) as cache:
        with pytest.raises(UsageError, match="async loader"):
            await cache.namespace("x").get_or_load("k", lambda: 1)  # type: ignore[arg-type, return-value]
