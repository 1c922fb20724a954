"""The store contract, as tests. Every store's test module subclasses ``StoreConformance``.

Written once for awaited stores; the generated sync twin (``tests/_sync/conformance.py``)
serves the sync stores, the in-process ``MemoryStore`` included.

Stores that expire by a server's own clock (Redis) cannot be driven by a manual clock, so
a subclass sets ``scale`` (to shorten every duration) and ``real_time = True`` (the test
then sleeps as well as advancing the injected clock).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from steadycache import AsyncStore, Entry
from tests.conftest import ManualClock


def make_entry(value: object, now: float, ttl: float = 60.0, stale: float = 0.0) -> Entry:
    return Entry(
        value, stored_at=now, fresh_until=now + ttl, stale_until=now + ttl + stale, size=10
    )


def K(name: str) -> str:  # noqa: N802 - reads like a key literal in the tests below
    """A stored key of namespace ``ns`` (as the facade builds them)."""
    return f"ns:g0:s{name}"


class StoreConformance:
    """Subclasses provide ``make_store(clock)`` (and ``release(store)`` if it opened more
    than the store closes)."""

    scale: float = 1.0
    real_time: bool = False

    def make_store(self, clock: ManualClock) -> AsyncStore:
        raise NotImplementedError

    async def release(self, store: AsyncStore) -> None:
        await store.aclose()

    @pytest.fixture
    async def store(self, clock: ManualClock) -> AsyncIterator[AsyncStore]:
        if self.real_time:
            clock.now = time.time()
        store = self.make_store(clock)
        yield store
        await self.release(store)

    async def elapse(self, clock: ManualClock, seconds: float) -> None:
        clock.advance(seconds * self.scale)
        if self.real_time:
            await asyncio.sleep(seconds * self.scale)

    def entry(
        self, value: object, clock: ManualClock, ttl: float = 60.0, stale: float = 0.0
    ) -> Entry:
        return make_entry(value, clock.now, ttl * self.scale, stale * self.scale)

    async def test_get_missing_is_none(self, store: AsyncStore) -> None:
        assert await store.get(K("absent")) is None

    async def test_set_then_get(self, store: AsyncStore, clock: ManualClock) -> None:
        entry = self.entry({"a": 1}, clock)
        await store.set(K("k"), entry)
        found = await store.get(K("k"))
        assert found is not None
        assert found.value == {"a": 1}
        assert found.fresh_until == entry.fresh_until
        assert found.version == entry.version

    async def test_overwrite(self, store: AsyncStore, clock: ManualClock) -> None:
        await store.set(K("k"), self.entry(1, clock))
        await store.set(K("k"), self.entry(2, clock))
        found = await store.get(K("k"))
        assert found is not None
        assert found.value == 2

    async def test_delete(self, store: AsyncStore, clock: ManualClock) -> None:
        await store.set(K("k"), self.entry(1, clock))
        assert await store.delete(K("k")) is True
        assert await store.delete(K("k")) is False
        assert await store.get(K("k")) is None

    async def test_many(self, store: AsyncStore, clock: ManualClock) -> None:
        await store.set_many({K(f"k{i}"): self.entry(i, clock) for i in range(5)})
        found = await store.get_many([K("k0"), K("nope"), K("k4")])
        assert [e.value if e else None for e in found] == [0, None, 4]
        assert await store.delete_many([K("k0"), K("k1"), K("nope")]) == 2
        assert await store.get(K("k1")) is None

    async def test_stale_but_not_dead_is_returned(
        self, store: AsyncStore, clock: ManualClock
    ) -> None:
        await store.set(K("k"), self.entry(1, clock, ttl=10, stale=20))
        await self.elapse(clock, 15)
        assert await store.get(K("k")) is not None  # the facade decides what stale means

    async def test_dead_entries_are_misses(self, store: AsyncStore, clock: ManualClock) -> None:
        await store.set(K("k"), self.entry(1, clock, ttl=10))
        await self.elapse(clock, 12)
        before = store.stats()
        assert await store.get(K("k")) is None
        after = store.stats()
        assert after.hits == before.hits
        assert after.misses == before.misses + 1

    async def test_already_dead_entry_is_not_stored(
        self, store: AsyncStore, clock: ManualClock
    ) -> None:
        await store.set(K("k"), make_entry(1, clock.now - 100, ttl=10))
        assert await store.get(K("k")) is None

    async def test_clear(self, store: AsyncStore, clock: ManualClock) -> None:
        await store.set_many({K(f"k{i}"): self.entry(i, clock) for i in range(3)})
        await store.clear()
        assert await store.get_many([K("k0"), K("k1"), K("k2")]) == [None, None, None]

    async def test_counters(self, store: AsyncStore, clock: ManualClock) -> None:
        await store.set(K("k"), self.entry(1, clock))
        await store.get(K("k"))
        await store.get(K("k"))
        await store.get(K("x"))
        stats = store.stats()
        assert (stats.hits, stats.misses, stats.sets) == (2, 1, 1)
