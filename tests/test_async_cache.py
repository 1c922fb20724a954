"""What only the asyncio facade does: it refuses sync functions and sync loaders.

Not generated from tests/_async: in the sync twin these would be calls that are fine (a
sync function, a sync loader); the sync facade's own kind check is in tests/test_cache.py.
Everything both facades do is in tests/_async/test_facade.py.
"""

from __future__ import annotations

import asyncio
import inspect

import pytest

from steadycache import AsyncCache, UsageError
from tests.conftest import ManualClock


async def test_cached_decorator_rejects_sync_functions(clock: ManualClock) -> None:
    async with AsyncCache(clock=clock) as cache:

        def sync_fn(x: int) -> int:
            return x

        with pytest.raises(UsageError, match=r"Cache\.cached"):
            cache.cached("q")(sync_fn)  # type: ignore[arg-type]


async def test_sync_loader_given_to_async_namespace_is_a_usage_error(clock: ManualClock) -> None:
    async with AsyncCache(clock=clock) as cache:
        with pytest.raises(UsageError, match="async loader"):
            await cache.namespace("x").get_or_load("k", lambda: 1)  # type: ignore[arg-type, return-value]


async def test_what_cached_returns_is_seen_as_a_coroutine_function(clock: ManualClock) -> None:
    # Frameworks (Starlette, asgiref for Django) ask before they decide to await a call.
    async with AsyncCache(clock=clock) as cache:

        @cache.cached
        async def price(sku: str) -> int:
            return len(sku)

        assert inspect.iscoroutinefunction(price) or asyncio.iscoroutinefunction(price)
        assert await price("abc") == 3
