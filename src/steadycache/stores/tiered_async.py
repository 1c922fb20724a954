"""Two tiers for asyncio: the in-process L1 (called directly) in front of an awaited L2.

The same rules as ``TieredStore``: L1 then L2 on reads, L2 then L1 then the backplane on
writes, L1 copies capped at ``l1_max_age``, every L2 failure counted and logged, and
``StoreError`` raised only when the policy asks for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from steadycache._core.entry import Entry
from steadycache.errors import StoreError
from steadycache.stores.backplane import MarkListener
from steadycache.stores.base import StoreStats, WriteOutcome
from steadycache.stores.memory import MemoryStore
from steadycache.stores.redis import RedisStoreBase
from steadycache.stores.redis_async import AsyncRedisBackend, AsyncRedisStore
from steadycache.stores.tiered import TierPair

logger = logging.getLogger("steadycache")


class AsyncTieredStore(TierPair):
    """L1 + L2 with a backplane, for ``AsyncCache``; also the lease capability."""

    def __init__(
        self,
        namespace: str,
        local: MemoryStore,
        shared: AsyncRedisStore,
        backend: AsyncRedisBackend,
        *,
        l1_max_age: float,
        accept_noeviction: bool = False,
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
        self._backend = backend
        self._accept_noeviction = accept_noeviction
        self._ready = False
        self._mark_listener: MarkListener | None = None

    async def start(self) -> None:
        """Check the server's eviction policy and join the backplane (needs a running loop).

        Runs on first use; ``AsyncCache.start()`` runs it for every namespace up front so
        a refused server configuration fails the deploy, not the first request.
        """
        if self._ready:
            return
        await self._backend.check_server_once(accept_noeviction=self._accept_noeviction)
        backplane = self._backend.backplane()
        backplane.register(self.namespace, self.local)
        if self._mark_listener is not None:
            backplane.register_marks(self.namespace, self._mark_listener)
        self._ready = True

    def _shared_parts(self) -> tuple[RedisStoreBase, Any, Any]:
        return self.shared, self._backend, self._backend._backplane

    async def _announce(self, op: str, key: str, value: int | None = None) -> None:
        await self._backend.backplane().publish(self.namespace, op, key, value)

    # --- invalidation marks (see _core/marks.py) -------------------------------------------

    def listen_marks(self, listener: MarkListener) -> None:
        """Apply counters other processes move (backplane, joined at ``start``)."""
        self._mark_listener = listener

    async def read_marks(self, fields: Sequence[str]) -> list[int]:
        if not self._ready:
            await self.start()
        return await self.shared.read_marks(fields)

    async def bump_mark(self, field: str, floor: int) -> int:
        """Move a counter on in the shared tier and tell every process."""
        moved = await self.shared.move_mark(field, floor)
        await self._announce("mark", field, moved)
        return moved

    async def raise_mark(self, field: str, floor: int) -> int:
        """Carry a counter the shared tier lost (a restart) forward to ``floor``."""
        return await self.shared.move_mark(field, floor, step=0)

    async def get(self, key: str, now: float | None = None) -> Entry | None:
        if not self._ready:
            await self.start()
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
        if not self._ready:
            await self.start()
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
        if not self._ready:
            await self.start()
        try:
            await self.shared.set(key, entry)
        except StoreError as error:
            self._fallback("set", error)
        self.local.set(key, self._local_copy(entry))
        await self._announce("set", key)

    async def set_leased(self, key: str, entry: Entry, token: str) -> bool:
        """Write through the lease (see ``RedisStore.set_leased``); False if it was lost."""
        return await self.write_leased(key, entry, token) is WriteOutcome.WRITTEN

    async def write_leased(self, key: str, entry: Entry, token: str) -> WriteOutcome:
        """Write through the lease; L1 and the backplane only when it was written."""
        outcome = await self.shared.write_leased(key, entry, token)
        if outcome is WriteOutcome.WRITTEN:
            self.local.set(key, self._local_copy(entry))
            await self._announce("set", key)
        return outcome

    async def set_many(self, items: Mapping[str, Entry]) -> None:
        for key, entry in items.items():
            await self.set(key, entry)

    async def delete(self, key: str) -> bool:
        if not self._ready:
            await self.start()
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

    async def acquire_lease(self, key: str, ttl: float) -> str | None:
        return await self.shared.acquire_lease(key, ttl)

    async def claim_lease(self, key: str, ttl: float) -> tuple[str | None, float]:
        return await self.shared.claim_lease(key, ttl)

    async def renew_lease(self, key: str, token: str, ttl: float) -> bool:
        return await self.shared.renew_lease(key, token, ttl)

    async def release_lease(self, key: str, token: str) -> None:
        await self.shared.release_lease(key, token)

    async def put_document(self, name: str, text: str) -> None:
        await self.shared.put_document(name, text)

    async def get_document(self, name: str) -> str | None:
        return await self.shared.get_document(name)

    async def get_shared(self, key: str) -> Entry | None:
        """L2 only (a lease waiter polling for the holder's result)."""
        entry = await self.shared.get(key)
        if entry is not None:
            self.local.set(key, self._local_copy(entry))
        return entry

    def tier_stats(self) -> tuple[StoreStats, ...]:
        """One snapshot per tier: L1 then L2."""
        return (self.local.stats(), self.shared.stats())

    async def close(self) -> None:
        self.local.close()
