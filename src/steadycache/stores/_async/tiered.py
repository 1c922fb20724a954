"""Two tiers: an in-process L1 (``MemoryStore``) in front of a shared L2 (the Redis store).

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

from steadycache._core.entry import Entry
from steadycache.errors import StoreError
from steadycache.stores._async.capabilities import AsyncBackplaneLink
from steadycache.stores._async.redis import AsyncRedisStore
from steadycache.stores.base import MarkListener, StoreStats, WriteOutcome
from steadycache.stores.memory import MemoryStore

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


class AsyncTieredStore:
    """L1 + L2 with a backplane. Implements the store contract and the lease, marks and
    documents capabilities (``stores/base.py``)."""

    in_process: bool = False
    tier: str = "tiered"

    def __init__(
        self,
        namespace: str,
        local: MemoryStore,
        shared: AsyncRedisStore,
        backplane: AsyncBackplaneLink | None,
        *,
        l1_max_age: float,
        accept_noeviction: bool = False,
        raise_store_errors: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.namespace = namespace
        self.local = local
        self.shared = shared
        self._backplane = backplane
        self._l1_max_age = l1_max_age
        self._accept_noeviction = accept_noeviction
        self._raise = raise_store_errors
        self._clock = clock
        self.fallbacks = 0
        if backplane is not None:
            backplane.register(namespace, local)

    async def start(self) -> None:
        """Check the server's eviction policy and join the backplane: before the first
        request, so a refused server configuration fails the deploy, not a user."""
        await self.shared.backend.check_server_once(accept_noeviction=self._accept_noeviction)
        if self._backplane is not None:
            await self._backplane.start()
        await self.shared.backend.refresh_server_stats()

    async def refresh_stats(self) -> None:
        """Re-read the server's metrics if they are old (a maintenance pass does this)."""
        await self.shared.backend.refresh_server_stats()

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

    async def _announce(self, op: str, key: str, value: int | None = None) -> None:
        if self._backplane is not None:
            await self._backplane.publish(self.namespace, op, key, value)

    # --- invalidation marks (see _core/marks.py) -------------------------------------------

    def listen_marks(self, listener: MarkListener) -> None:
        """Apply counters other processes move (heard on the backplane) to ``listener``."""
        if self._backplane is not None:
            self._backplane.register_marks(self.namespace, listener)

    async def read_marks(self, fields: Sequence[str]) -> list[int]:
        return await self.shared.read_marks(fields)

    async def bump_mark(self, field: str, floor: int) -> int:
        """Move a counter on in the shared tier and tell every process."""
        moved = await self.shared.move_mark(field, floor)
        await self._announce("mark", field, moved)
        return moved

    async def raise_mark(self, field: str, floor: int) -> int:
        """Carry a counter the shared tier lost (a restart) forward to ``floor``."""
        return await self.shared.move_mark(field, floor, step=0)

    # --- contract -------------------------------------------------------------------------

    async def get(self, key: str, now: float | None = None) -> Entry | None:
        entry = self.local.get(key, now)
        if entry is not None:
            return entry
        try:
            entry = await self.shared.get(key)
        except StoreError as error:
            self._fallback("get", error)
            return None
        if entry is not None:
            self.local.set(key, self._local_copy(entry))
        return entry

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        found = self.local.get_many(keys)
        missing = [key for key, entry in zip(keys, found, strict=True) if entry is None]
        if not missing:
            return found
        try:
            fetched = dict(zip(missing, await self.shared.get_many(missing), strict=True))
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

    async def set(self, key: str, entry: Entry) -> None:
        try:
            await self.shared.set(key, entry)
        except StoreError as error:
            self._fallback("set", error)
        self.local.set(key, self._local_copy(entry))
        await self._announce("set", key)

    async def set_many(self, items: Mapping[str, Entry]) -> None:
        for key, entry in items.items():
            await self.set(key, entry)

    async def delete(self, key: str) -> bool:
        removed = self.local.delete(key)
        try:
            removed = await self.shared.delete(key) or removed
        except StoreError as error:
            self._fallback("delete", error)
        await self._announce("del", key)
        return removed

    async def delete_many(self, keys: Sequence[str]) -> int:
        removed = 0
        for key in keys:
            removed += await self.delete(key)
        return removed

    async def delete_prefix(self, prefix: str) -> int:
        removed = self.local.delete_prefix(prefix)
        try:
            removed = max(removed, await self.shared.delete_prefix(prefix))
        except StoreError as error:
            self._fallback("delete_prefix", error)
        await self._announce("flush", prefix)
        return removed

    async def clear(self) -> None:
        self.local.clear()
        try:
            await self.shared.clear()
        except StoreError as error:
            self._fallback("clear", error)
        await self._announce("flush", f"{self.namespace}:")

    def peek(self, key: str) -> Entry | None:
        """This process's L1 copy, without counting a read."""
        return self.local.peek(key)

    # --- leases (the shared tier's; a written value fills L1 and is announced) ---------------

    async def acquire_lease(self, key: str, ttl: float) -> str | None:
        return await self.shared.acquire_lease(key, ttl)

    async def claim_lease(self, key: str, ttl: float) -> tuple[str | None, float]:
        return await self.shared.claim_lease(key, ttl)

    async def renew_lease(self, key: str, token: str, ttl: float) -> bool:
        return await self.shared.renew_lease(key, token, ttl)

    async def release_lease(self, key: str, token: str) -> None:
        await self.shared.release_lease(key, token)

    async def lease_held(self, key: str) -> bool:
        return await self.shared.lease_held(key)

    async def set_leased(self, key: str, entry: Entry, token: str) -> bool:
        """Write through the lease (see ``write_leased``); whether it was written."""
        return await self.write_leased(key, entry, token) is WriteOutcome.WRITTEN

    async def write_leased(self, key: str, entry: Entry, token: str) -> WriteOutcome:
        """Write through the lease; L1 and the backplane only when it was written."""
        outcome = await self.shared.write_leased(key, entry, token)
        if outcome is WriteOutcome.WRITTEN:
            self.local.set(key, self._local_copy(entry))
            await self._announce("set", key)
        return outcome

    async def get_shared(self, key: str) -> Entry | None:
        """L2 only (a lease waiter polling for the holder's result)."""
        entry = await self.shared.get(key)
        if entry is not None:
            self.local.set(key, self._local_copy(entry))
        return entry

    # --- documents ------------------------------------------------------------------------

    async def put_document(self, name: str, text: str) -> None:
        await self.shared.put_document(name, text)

    async def get_document(self, name: str) -> str | None:
        return await self.shared.get_document(name)

    # --- introspection ----------------------------------------------------------------------

    def stats(self) -> StoreStats:
        return self.local.stats()

    def tier_stats(self) -> tuple[StoreStats, ...]:
        """One snapshot per tier: L1 then L2."""
        return (self.local.stats(), self.shared.stats())

    def shared_counters(self) -> dict[str, int]:
        """Counters of the shared parts, for ``NamespaceStats`` (the README names them)."""
        backend = self.shared.backend
        counters = {
            "fallbacks": self.fallbacks,
            "replication_shortfalls": self.shared.replication_shortfalls,
            # The backend is shared by every namespace of the cache: these are its totals.
            "redis_errors": int(backend.errors),
            "breaker_rejections": int(backend.breaker_rejections),
        }
        if self._backplane is not None:
            counters.update(self._backplane.counters())
        return counters

    async def aclose(self) -> None:
        self.local.close()
