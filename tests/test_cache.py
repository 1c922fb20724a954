"""What only the sync facade does: ``Cache.cached`` refuses an ``async def``.

Not generated from tests/_async: its twin is a different check (``AsyncCache.cached``
refusing a sync function, tests/test_async_cache.py). Everything both facades do is in
tests/_async/test_facade.py and its generated twin tests/_sync/test_facade.py.
"""

from __future__ import annotations

import pytest

from steadycache import AsyncCache, Cache, UsageError


def test_cached_decorator_rejects_async_functions(cache: Cache) -> None:
    async def fetch(x: int) -> int:
        return x

    with pytest.raises(UsageError, match=r"AsyncCache\.cached"):
        cache.cached("a")(fetch)


async def test_cached_decorator_rejects_what_async_cache_cached(cache: Cache) -> None:
    async with AsyncCache() as other:

        @other.cached
        async def fetch(x: int) -> int:
            return x

        with pytest.raises(UsageError, match=r"AsyncCache\.cached"):
            cache.cached("b")(fetch)
