"""The store contract: a small set of operations every backend implements.

Stores hold ``Entry`` objects under fully built string keys. They decide nothing about
freshness (the pure core does); they only drop entries past ``stale_until``, which can
never be served. Optional capabilities (locks, tags, pub/sub) arrive as separate
protocols, checked when a namespace is configured.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from steadycache._core.entry import Entry


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Counters and gauges of one store (one tier of one namespace)."""

    tier: str
    hits: int
    misses: int
    sets: int
    deletes: int
    evictions: int
    expirations: int
    rejections: int
    garbled: int
    errors: int
    entries: int
    bytes: int
    #: Fields that describe the whole server rather than this namespace (a shared Redis
    #: reports its own evictions and memory: the client cannot split them per namespace).
    server_wide: tuple[str, ...] = ()


@runtime_checkable
class Store(Protocol):
    """A synchronous store."""

    #: Calls are in-memory and non-blocking, so an event loop may call them directly.
    in_process: bool
    tier: str

    def get(self, key: str, now: float | None = None) -> Entry | None:
        """The entry, unless absent or dead. ``now``: the caller's reading of the clock."""
        ...

    def get_many(self, keys: Sequence[str]) -> list[Entry | None]: ...

    def set(self, key: str, entry: Entry) -> None: ...

    def set_many(self, items: Mapping[str, Entry]) -> None: ...

    def delete(self, key: str) -> bool: ...

    def delete_many(self, keys: Sequence[str]) -> int: ...

    def clear(self) -> None: ...

    def stats(self) -> StoreStats: ...

    def close(self) -> None: ...


@runtime_checkable
class AsyncStore(Protocol):
    """An asynchronous store (network backends)."""

    in_process: bool
    tier: str

    async def get(self, key: str) -> Entry | None: ...

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]: ...

    async def set(self, key: str, entry: Entry) -> None: ...

    async def set_many(self, items: Mapping[str, Entry]) -> None: ...

    async def delete(self, key: str) -> bool: ...

    async def delete_many(self, keys: Sequence[str]) -> int: ...

    async def clear(self) -> None: ...

    def stats(self) -> StoreStats: ...

    async def close(self) -> None: ...


class WriteOutcome(enum.IntEnum):
    """What a versioned (and possibly leased) write to a shared store did."""

    WRITTEN = 1
    #: The store holds a verified entry with a newer version: the write was refused.
    OLDER_THAN_STORED = 0
    #: The lease was not (or no longer) the writer's: invalidated while loading.
    LEASE_LOST = -1


@runtime_checkable
class LeaseStore(Protocol):
    """The lease capability of a shared store (fleet-wide single-flight)."""

    def acquire_lease(self, key: str, ttl: float) -> str | None: ...

    def claim_lease(self, key: str, ttl: float) -> tuple[str | None, float]: ...

    def renew_lease(self, key: str, token: str, ttl: float) -> bool: ...

    def release_lease(self, key: str, token: str) -> None: ...

    def set_leased(self, key: str, entry: Entry, token: str) -> bool: ...

    def write_leased(self, key: str, entry: Entry, token: str) -> WriteOutcome: ...

    def get_shared(self, key: str) -> Entry | None: ...
