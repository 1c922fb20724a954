"""Two tiers: an in-process L1 (``MemoryStore``) in front of a shared L2 (``RedisStore``).

Reads try L1, then L2 (filling L1). Writes go to L2 first (versioned), then L1, then the
backplane tells other processes to drop their L1 copy. An L1 copy lives at most
``l1_max_age`` (its ``stale_until`` is capped; its ``fresh_until`` is kept, so early
refresh still sees the real expiry).

When L2 fails, the failure policy decides: ``fallback`` serves from L1 and treats L2 as a
miss (the facade then serves stale within policy or calls the loader behind the origin
limiter); ``raise`` lets ``StoreError`` reach the caller. Every fallback is counted
(``fallbacks``) and logged, none is silent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from steadycache._core.entry import Entry
from steadycache.errors import StoreError
from steadycache.stores.backplane import Backplane, MarkListener
from steadycache.stores.base import StoreStats, WriteOutcome
from steadycache.stores.memory import MemoryStore
from steadycache.stores.redis import RedisStore, RedisStoreBase

logger = logging.getLogger("steadycache")


def local_copy(entry: Entry, cap: float) -> Entry:
    """The L1 copy of ``entry``: dropped at ``cap``, but with its real ``fresh_until``."""
    if entry.stale_until <= cap:
        return entry
    return Entry(
        entry.value,
        stored_at=entry.stored_at,
        fresh_until=entry.fresh_until,
        stale_until=cap,
        load_cost=entry.load_cost,
        version=entry.version,
        tags=entry.tags,
        tag_versions=entry.tag_versions,
        size=entry.size,
    )


class TierPair:
    """What the sync and async two-tier stores share: the L1 copy rule, failure handling,
    and the per-tier view. Subclasses add the (awaited or not) calls to the shared tier."""

    in_process: bool = False
    tier: str = "tiered"

    def __init__(
        self,
        namespace: str,
        local: MemoryStore,
        *,
        l1_max_age: float,
        raise_store_errors: bool,
        clock: Callable[[], float],
    ) -> None:
        self.namespace = namespace
        self.local = local
        self._l1_max_age = l1_max_age
        self._raise = raise_store_errors
        self._clock = clock
        self.fallbacks = 0

    def _local_copy(self, entry: Entry) -> Entry:
        return local_copy(entry, self._clock() + self._l1_max_age)

    def _fallback(self, operation: str, error: StoreError) -> None:
        self.fallbacks += 1
        logger.warning(
            "shared tier %s failed for namespace %s, falling back: %s",
            operation,
            self.namespace,
            error,
        )
        if self._raise:
            raise error

    def peek(self, key: str) -> Entry | None:
        """This process's L1 copy, without counting a read."""
        return self.local.peek(key)

    def _shared_parts(self) -> tuple[RedisStoreBase, Any, Any]:
        """The L2 store, its backend and the backplane (or None): what ``shared_counters``
        reads."""
        raise NotImplementedError

    def shared_counters(self) -> dict[str, int]:
        """Counters of the shared parts, for ``NamespaceStats`` (the README names them)."""
        shared, backend, backplane = self._shared_parts()
        counters = {
            "fallbacks": self.fallbacks,
            "replication_shortfalls": shared.replication_shortfalls,
            # The backend is shared by every namespace of the cache: these are its totals.
            "redis_errors": int(backend.errors),
            "breaker_rejections": int(backend.breaker_rejections),
        }
        if backplane is not None:
            counters["resyncs"] = int(backplane.resyncs)
            counters["backplane_disconnects"] = int(backplane.disconnects)
            counters["backplane_publish_errors"] = int(backplane.publish_errors)
        return counters

    def stats(self) -> StoreStats:
        return self.local.stats()


class TieredStore(TierPair):
    """L1 + L2 with a backplane. Implements the store contract and the lease capability."""

    def __init__(
        self,
        namespace: str,
        local: MemoryStore,
        shared: RedisStore,
        backplane: Backplane | None,
        *,
        l1_max_age: float,
        raise_store_errors: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            namespace,
            local,
            l1_max_age=l1_max_age,
            raise_store_errors=raise_store_errors,
            clock=clock,
        )
        self.shared = shared
        self._backplane = backplane
        if backplane is not None:
            backplane.register(namespace, local)

    def _shared_parts(self) -> tuple[RedisStoreBase, Any, Any]:
        return self.shared, self.shared.backend, self._backplane

    def _announce(self, op: str, key: str, value: int | None = None) -> None:
        if self._backplane is not None:
            self._backplane.publish(self.namespace, op, key, value)

    # --- invalidation marks (see _core/marks.py) -------------------------------------------

    def listen_marks(self, listener: MarkListener) -> None:
        """Apply counters other processes move (backplane) to ``listener``."""
        if self._backplane is not None:
            self._backplane.register_marks(self.namespace, listener)

    def read_marks(self, fields: Sequence[str]) -> list[int]:
        return self.shared.read_marks(fields)

    def bump_mark(self, field: str, floor: int) -> int:
        """Move a counter on in the shared tier and tell every process."""
        moved = self.shared.move_mark(field, floor)
        self._announce("mark", field, moved)
        return moved

    def raise_mark(self, field: str, floor: int) -> int:
        """Carry a counter the shared tier lost (a restart) forward to ``floor``."""
        return self.shared.move_mark(field, floor, step=0)

    # --- contract -------------------------------------------------------------------------

    def get(self, key: str, now: float | None = None) -> Entry | None:
        entry = self.local.get(key, now)
        if entry is not None:
            return entry
        try:
            entry = self.shared.get(key)
        except StoreError as error:
            self._fallback("get", error)
            return None
        if entry is not None:
            self.local.set(key, self._local_copy(entry))
        return entry

    def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        found = self.local.get_many(keys)
        missing = [key for key, entry in zip(keys, found, strict=True) if entry is None]
        if not missing:
            return found
        try:
            fetched = dict(zip(missing, self.shared.get_many(missing), strict=True))
        except StoreError as error:
            self._fallback("get_many", error)
            return found
        for key, entry in fetched.items():
            if entry is not None:
                self.local.set(key, self._local_copy(entry))
        return [
            entry if entry is not None else fetched.get(key)
            for key, entry in zip(keys, found, strict=True)
        ]

    def set(self, key: str, entry: Entry) -> None:
        try:
            self.shared.set(key, entry)
        except StoreError as error:
            self._fallback("set", error)
        self.local.set(key, self._local_copy(entry))
        self._announce("set", key)

    def set_leased(self, key: str, entry: Entry, token: str) -> bool:
        """Write through the lease (see ``RedisStore.set_leased``); False if it was lost."""
        return self.write_leased(key, entry, token) is WriteOutcome.WRITTEN

    def write_leased(self, key: str, entry: Entry, token: str) -> WriteOutcome:
        """Write through the lease; L1 and the backplane only when it was written."""
        outcome = self.shared.write_leased(key, entry, token)
        if outcome is WriteOutcome.WRITTEN:
            self.local.set(key, self._local_copy(entry))
            self._announce("set", key)
        return outcome

    def set_many(self, items: Mapping[str, Entry]) -> None:
        for key, entry in items.items():
            self.set(key, entry)

    def delete(self, key: str) -> bool:
        removed = self.local.delete(key)
        try:
            removed = self.shared.delete(key) or removed
        except StoreError as error:
            self._fallback("delete", error)
        self._announce("del", key)
        return removed

    def delete_many(self, keys: Sequence[str]) -> int:
        return sum(self.delete(key) for key in keys)

    def delete_prefix(self, prefix: str) -> int:
        removed = self.local.delete_prefix(prefix)
        try:
            removed = max(removed, self.shared.delete_prefix(prefix))
        except StoreError as error:
            self._fallback("delete_prefix", error)
        self._announce("flush", prefix)
        return removed

    def clear(self) -> None:
        self.local.clear()
        try:
            self.shared.clear()
        except StoreError as error:
            self._fallback("clear", error)
        self._announce("flush", f"{self.namespace}:")

    # --- leases (forwarded to the shared tier) ----------------------------------------------

    def acquire_lease(self, key: str, ttl: float) -> str | None:
        return self.shared.acquire_lease(key, ttl)

    def claim_lease(self, key: str, ttl: float) -> tuple[str | None, float]:
        return self.shared.claim_lease(key, ttl)

    def renew_lease(self, key: str, token: str, ttl: float) -> bool:
        return self.shared.renew_lease(key, token, ttl)

    def release_lease(self, key: str, token: str) -> None:
        self.shared.release_lease(key, token)

    def lease_held(self, key: str) -> bool:
        return self.shared.lease_held(key)

    def put_document(self, name: str, text: str) -> None:
        self.shared.put_document(name, text)

    def get_document(self, name: str) -> str | None:
        return self.shared.get_document(name)

    def get_shared(self, key: str) -> Entry | None:
        """L2 only (a lease waiter polling for the holder's result)."""
        entry = self.shared.get(key)
        if entry is not None:
            self.local.set(key, self._local_copy(entry))
        return entry

    # --- introspection ----------------------------------------------------------------------

    def tier_stats(self) -> tuple[StoreStats, ...]:
        """One snapshot per tier: L1 then L2."""
        return (self.local.stats(), self.shared.stats())

    def close(self) -> None:
        self.local.close()
