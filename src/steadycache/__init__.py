"""steadycache: a production cache where every one of the ten decisions is explicit.

The public API is what this module exports (``tests/test_public_api.py`` pins it); every
other module is an implementation detail.
"""

from __future__ import annotations

from steadycache._core.entry import Entry
from steadycache.async_cache import AsyncCache
from steadycache.async_namespace import AsyncNamespace
from steadycache.cache import Cache
from steadycache.errors import (
    CacheError,
    ConfigurationError,
    GarbledEntryError,
    InvalidKeyError,
    LoaderError,
    LoadTimeoutError,
    MissingScopeError,
    NotAvailableYetError,
    OriginOverloaded,
    SerializationError,
    StoreError,
    UsageError,
    ValueTooLargeError,
)
from steadycache.namespace import Namespace
from steadycache.observability.stats import CacheStats, NamespaceStats
from steadycache.policy import (
    CacheAside,
    EarlyRefresh,
    Eviction,
    HotKeyWarmUp,
    Invalidation,
    LoaderTimeouts,
    LocalOnly,
    NoWarmUp,
    Observability,
    OnEvent,
    OnTableChange,
    OriginLimit,
    Policy,
    ReadThrough,
    RefreshAhead,
    Scope,
    Security,
    Sensitivity,
    SharedTiers,
    SingleFlight,
    Sizing,
    StaleIfError,
    StaleWhileRevalidate,
    Stampede,
    Ttl,
    WriteBehind,
    WriteThrough,
)
from steadycache.stampede.warm import WarmReport
from steadycache.stores._async.capabilities import AsyncStore
from steadycache.stores._sync.capabilities import Store
from steadycache.stores.base import StoreStats
from steadycache.stores.memory import MemoryStore
from steadycache.stores.redis_async import AsyncRedisBackend
from steadycache.stores.redis_backend import RedisBackend

__version__ = "0.1.0"

__all__ = [
    "AsyncCache",
    "AsyncNamespace",
    "AsyncRedisBackend",
    "AsyncStore",
    "Cache",
    "CacheAside",
    "CacheError",
    "CacheStats",
    "ConfigurationError",
    "EarlyRefresh",
    "Entry",
    "Eviction",
    "GarbledEntryError",
    "HotKeyWarmUp",
    "InvalidKeyError",
    "Invalidation",
    "LoadTimeoutError",
    "LoaderError",
    "LoaderTimeouts",
    "LocalOnly",
    "MemoryStore",
    "MissingScopeError",
    "Namespace",
    "NamespaceStats",
    "NoWarmUp",
    "NotAvailableYetError",
    "Observability",
    "OnEvent",
    "OnTableChange",
    "OriginLimit",
    "OriginOverloaded",
    "Policy",
    "ReadThrough",
    "RedisBackend",
    "RefreshAhead",
    "Scope",
    "Security",
    "Sensitivity",
    "SerializationError",
    "SharedTiers",
    "SingleFlight",
    "Sizing",
    "StaleIfError",
    "StaleWhileRevalidate",
    "Stampede",
    "Store",
    "StoreError",
    "StoreStats",
    "Ttl",
    "UsageError",
    "ValueTooLargeError",
    "WarmReport",
    "WriteBehind",
    "WriteThrough",
    "__version__",
]
