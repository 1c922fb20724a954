"""Simulated processes for the shared-tier tests: caches with their own connections to one
Redis, their backplanes, and polling until another process's change shows."""

from __future__ import annotations

import asyncio
import time

from steadycache import AsyncCache, AsyncNamespace, AsyncRedisBackend
from steadycache.stores.tiered_async import AsyncTieredStore
from tests.concurrency import AsyncRead


def cache_on(url: str, **backend: object) -> AsyncCache:
    """One simulated process: a cache with its own connections (and backplane) to ``url``."""
    return AsyncCache(redis=AsyncRedisBackend(url, **backend))  # type: ignore[arg-type]


def tiers_of(ns: AsyncNamespace) -> AsyncTieredStore:
    """The namespace's two tiers (``ns.store`` is typed as any store)."""
    store = ns.store
    assert isinstance(store, AsyncTieredStore)
    return store


async def subscribed(*caches: AsyncCache) -> None:
    """Start each cache and wait until its backplane listens: no invalidation published
    from now on is missed."""
    for cache in caches:
        await cache.start()
        assert cache.backplane is not None
        assert await cache.backplane.wait_subscribed(2.0)


async def reconnected(cache: AsyncCache, timeout: float = 3.0) -> None:
    """Wait until the cache's backplane has come back after its server did: it flushes L1
    (a resync) once it listens again."""
    backplane = cache.backplane
    assert backplane is not None

    async def resynced() -> bool:
        return bool(backplane.resyncs >= 1)

    await wait_for(resynced, True, timeout)


async def wait_for(read: AsyncRead, expected: object, timeout: float = 3.0) -> float:
    """Poll ``read()`` until it gives ``expected``; the seconds that took."""
    started = time.monotonic()
    while await read() != expected:
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{read} did not give {expected!r} within {timeout} s")
        await asyncio.sleep(0.002)
    return time.monotonic() - started
