"""steadycache: a production cache where every one of the ten decisions is explicit.

The public API is what this module exports (``tests/test_public_api.py`` pins it); every
other module is an implementation detail.
"""

from __future__ import annotations

from steadycache._core.entry import Entry
from steadycache.async_cache import AsyncCache, AsyncNamespace
from steadycache.cache import Cache, Namespace
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
from steadycache.observability.stats import NamespaceStats
from steadycache.policy import (
    CacheAside,
    EarlyRefresh,
    Eviction,
    Invalidation,
    LocalOnly,
    NoWarmUp,
    Observability,
    Policy,
    ReadThrough,
    Scope,
    Security,
    Sensitivity,
    SingleFlight,
    Sizing,
    Stampede,
    StaleIfError,
    StaleWhileRevalidate,
    Ttl,
)
from steadycache.stores.base import AsyncStore, Store, StoreStats
from steadycache.stores.memory import MemoryStore

__version__ = "0.1.0"

__all__ = [
    "AsyncCache",
    "AsyncNamespace",
    "AsyncStore",
    "Cache",
    "CacheAside",
    "CacheError",
    "ConfigurationError",
    "EarlyRefresh",
    "Entry",
    "Eviction",
    "GarbledEntryError",
    "InvalidKeyError",
    "Invalidation",
    "LoadTimeoutError",
    "LoaderError",
    "LocalOnly",
    "MemoryStore",
    "MissingScopeError",
    "Namespace",
    "NamespaceStats",
    "NoWarmUp",
    "NotAvailableYetError",
    "Observability",
    "OriginOverloaded",
    "Policy",
    "ReadThrough",
    "Scope",
    "Security",
    "Sensitivity",
    "SerializationError",
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
    "__version__",
]
