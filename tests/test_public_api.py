"""The public API is exactly what ``steadycache.__all__`` lists; changing it is deliberate."""

from __future__ import annotations

import steadycache

EXPECTED = {
    "AsyncCache",
    "AsyncNamespace",
    "AsyncRedisBackend",
    "RedisBackend",
    "SharedTiers",
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
    "RefreshAhead",
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
    "WarmReport",
    "WriteBehind",
    "WriteThrough",
    "__version__",
}


def test_public_api_is_pinned() -> None:
    assert set(steadycache.__all__) == EXPECTED
    for name in steadycache.__all__:
        assert hasattr(steadycache, name), name


def test_error_tree_is_rooted() -> None:
    for name in steadycache.__all__:
        value = getattr(steadycache, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, steadycache.CacheError), name
