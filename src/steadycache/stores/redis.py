"""``RedisStore`` (generated from ``stores/_async/redis.py``) and its write scripts."""

from __future__ import annotations

from steadycache.stores._sync.redis import RedisStore
from steadycache.stores.redis_common import (
    CLAIM_LEASE,
    LEASE_LOST,
    OLDER_THAN_STORED,
    RELEASE_LEASE,
    RENEW_LEASE,
    SET_VERSIONED,
    WRITTEN,
    RedisStoreBase,
)

__all__ = [
    "CLAIM_LEASE",
    "LEASE_LOST",
    "OLDER_THAN_STORED",
    "RELEASE_LEASE",
    "RENEW_LEASE",
    "SET_VERSIONED",
    "WRITTEN",
    "RedisStore",
    "RedisStoreBase",
]
