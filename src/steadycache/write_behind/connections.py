"""The sync Redis backend a write-behind journal appends through, for either facade.

Journals are sync (an fsync, a ``WAIT``): the sync cache hands its own backend to them,
the asyncio cache opens a sync one to the same URL (its appends run in a thread). This is
the one place where the two facades differ in how they wire a journal, so it is written
twice, by hand.
"""

from __future__ import annotations

from steadycache.errors import ConfigurationError
from steadycache.stores._async.redis import AsyncRedisBackend
from steadycache.stores._sync.redis import RedisBackend


def journal_backend(redis: RedisBackend | None) -> tuple[RedisBackend | None, bool]:
    """The cache's own backend (the sync cache's calls may block); not the journal's to close."""
    return redis, False


def journal_backend_async(redis: AsyncRedisBackend | None) -> tuple[RedisBackend | None, bool]:
    """A new sync backend to the asyncio cache's server (closed with the cache), or None."""
    if redis is None:
        return None, False
    if redis.url is None:
        raise ConfigurationError(
            "pattern",
            "a Redis write-behind journal needs a sync connection, made from the "
            "AsyncRedisBackend's URL; this one was built from a client: give it url=...",
        )
    return RedisBackend(redis.url, command_timeout=redis.command_timeout), True
