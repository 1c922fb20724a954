"""``AsyncRedisBackend`` and ``AsyncRedisStore`` (``stores/_async/redis.py``)."""

from __future__ import annotations

from steadycache.stores._async.redis import AsyncRedisBackend, AsyncRedisStore

__all__ = ["AsyncRedisBackend", "AsyncRedisStore"]
