"""Shared-tier behaviour only the asyncio facade has, so not generated: ``AsyncCache`` checks
the server when it starts (``Cache`` already does in ``namespace()``)."""

from __future__ import annotations

import pytest

from steadycache import AsyncCache, AsyncRedisBackend, ConfigurationError, Policy
from steadycache.policy import SharedTiers


async def test_noeviction_refused_at_start_not_at_namespace_creation(redis_url: str) -> None:
    async with AsyncCache(redis=AsyncRedisBackend(redis_url)) as cache:
        cache.namespace("strict", Policy(consistency=SharedTiers()))
        assert cache._redis is not None
        server = await cache._redis.client.config_get("maxmemory-policy")
        if server["maxmemory-policy"] == "noeviction":
            with pytest.raises(ConfigurationError, match="noeviction"):
                await cache.start()
