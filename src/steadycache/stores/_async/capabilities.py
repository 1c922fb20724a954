"""The store contract and the optional capabilities of a store, as protocols.

A namespace's parts are assembled once (``_async/assembly.py``): each optional capability
(fleet leases, shared invalidation marks, documents, two tiers) is checked there with
``isinstance`` against these protocols and kept in a typed field, or left ``None``. Nothing
probes a store with ``hasattr`` on the request path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from steadycache._core.entry import Entry
from steadycache.stores.base import MarkListener, StoreStats, WriteOutcome
from steadycache.stores.memory import MemoryStore


@runtime_checkable
class AsyncStore(Protocol):
    """The contract every store implements."""

    #: Calls are in-memory and never block: an event loop may call them directly.
    in_process: bool
    tier: str

    async def get(self, key: str, now: float | None = None) -> Entry | None:
        """The entry, unless absent or dead. ``now``: the caller's reading of the clock."""
        ...

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]: ...

    async def set(self, key: str, entry: Entry) -> None: ...

    async def set_many(self, items: Mapping[str, Entry]) -> None: ...

    async def delete(self, key: str) -> bool: ...

    async def delete_many(self, keys: Sequence[str]) -> int: ...

    async def clear(self) -> None: ...

    def stats(self) -> StoreStats: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class AsyncLeaseStore(Protocol):
    """Fleet-wide single-flight: one lease per key across every process."""

    async def claim_lease(self, key: str, ttl: float) -> tuple[str | None, float]: ...

    async def renew_lease(self, key: str, token: str, ttl: float) -> bool: ...

    async def release_lease(self, key: str, token: str) -> None: ...

    async def write_leased(self, key: str, entry: Entry, token: str) -> WriteOutcome: ...

    async def get_shared(self, key: str) -> Entry | None: ...


@runtime_checkable
class AsyncMarkStore(Protocol):
    """Invalidation marks (tag counters, the generation) shared by every process."""

    def listen_marks(self, listener: MarkListener) -> None: ...

    async def read_marks(self, fields: Sequence[str]) -> list[int]: ...

    async def bump_mark(self, field: str, floor: int) -> int: ...

    async def raise_mark(self, field: str, floor: int) -> int: ...


@runtime_checkable
class AsyncDocumentStore(Protocol):
    """Small documents the fleet shares (a hot-key snapshot)."""

    async def put_document(self, name: str, text: str) -> None: ...

    async def get_document(self, name: str) -> str | None: ...


@runtime_checkable
class AsyncSharedStore(Protocol):
    """A store with a shared tier behind this process's own: started before first use,
    its metrics refreshed by maintenance, its tiers and shared parts reported apart."""

    async def start(self) -> None: ...

    async def refresh_stats(self) -> None: ...

    def tier_stats(self) -> tuple[StoreStats, ...]: ...

    def shared_counters(self) -> dict[str, int]: ...


class AsyncBackplaneLink(Protocol):
    """What a two-tier store needs of the invalidation backplane."""

    def register(self, namespace: str, local: MemoryStore) -> None: ...

    def register_marks(self, namespace: str, listener: MarkListener) -> None: ...

    async def start(self) -> None: ...

    async def publish(
        self, namespace: str, op: str, key: str, value: int | None = None
    ) -> None: ...

    def counters(self) -> dict[str, int]: ...
