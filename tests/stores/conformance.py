"""The store contract, as tests. Every store's test module subclasses ``StoreConformance``.

Stores that expire by a server's own clock (Redis) cannot be driven by a manual clock, so
a subclass sets ``scale`` (to shorten every duration) and ``real_time = True`` (the test
then sleeps as well as advancing the injected clock).
"""

from __future__ import annotations

import time

import pytest

from steadycache import Entry
from steadycache.stores.base import Store
from tests.conftest import ManualClock


def make_entry(value: object, now: float, ttl: float = 60.0, stale: float = 0.0) -> Entry:
    return Entry(
        value, stored_at=now, fresh_until=now + ttl, stale_until=now + ttl + stale, size=10
    )


def K(name: str) -> str:  # noqa: N802 - reads like a key literal in the tests below
    """A stored key of namespace ``ns`` (as the facade builds them)."""
    return f"ns:g0:s{name}"


class StoreConformance:
    """Subclasses provide ``make_store(clock)``."""

    scale: float = 1.0
    real_time: bool = False

    def make_store(self, clock: ManualClock) -> Store:
        raise NotImplementedError

    @pytest.fixture
    def store(self, clock: ManualClock) -> Store:
        if self.real_time:
            clock.now = time.time()
        return self.make_store(clock)

    def elapse(self, clock: ManualClock, seconds: float) -> None:
        clock.advance(seconds * self.scale)
        if self.real_time:
            time.sleep(seconds * self.scale)

    def entry(
        self, value: object, clock: ManualClock, ttl: float = 60.0, stale: float = 0.0
    ) -> Entry:
        return make_entry(value, clock.now, ttl * self.scale, stale * self.scale)

    def test_get_missing_is_none(self, store: Store) -> None:
        assert store.get(K("absent")) is None

    def test_set_then_get(self, store: Store, clock: ManualClock) -> None:
        entry = self.entry({"a": 1}, clock)
        store.set(K("k"), entry)
        found = store.get(K("k"))
        assert found is not None
        assert found.value == {"a": 1}
        assert found.fresh_until == entry.fresh_until
        assert found.version == entry.version

    def test_overwrite(self, store: Store, clock: ManualClock) -> None:
        store.set(K("k"), self.entry(1, clock))
        store.set(K("k"), self.entry(2, clock))
        found = store.get(K("k"))
        assert found is not None
        assert found.value == 2

    def test_delete(self, store: Store, clock: ManualClock) -> None:
        store.set(K("k"), self.entry(1, clock))
        assert store.delete(K("k")) is True
        assert store.delete(K("k")) is False
        assert store.get(K("k")) is None

    def test_many(self, store: Store, clock: ManualClock) -> None:
        store.set_many({K(f"k{i}"): self.entry(i, clock) for i in range(5)})
        found = store.get_many([K("k0"), K("nope"), K("k4")])
        assert [e.value if e else None for e in found] == [0, None, 4]
        assert store.delete_many([K("k0"), K("k1"), K("nope")]) == 2
        assert store.get(K("k1")) is None

    def test_stale_but_not_dead_is_returned(self, store: Store, clock: ManualClock) -> None:
        store.set(K("k"), self.entry(1, clock, ttl=10, stale=20))
        self.elapse(clock, 15)
        assert store.get(K("k")) is not None  # the facade decides what stale means

    def test_dead_entries_are_misses(self, store: Store, clock: ManualClock) -> None:
        store.set(K("k"), self.entry(1, clock, ttl=10))
        self.elapse(clock, 12)
        before = store.stats()
        assert store.get(K("k")) is None
        after = store.stats()
        assert after.hits == before.hits
        assert after.misses == before.misses + 1

    def test_already_dead_entry_is_not_stored(self, store: Store, clock: ManualClock) -> None:
        store.set(K("k"), make_entry(1, clock.now - 100, ttl=10))
        assert store.get(K("k")) is None

    def test_clear(self, store: Store, clock: ManualClock) -> None:
        store.set_many({K(f"k{i}"): self.entry(i, clock) for i in range(3)})
        store.clear()
        assert store.get_many([K("k0"), K("k1"), K("k2")]) == [None, None, None]

    def test_counters(self, store: Store, clock: ManualClock) -> None:
        store.set(K("k"), self.entry(1, clock))
        store.get(K("k"))
        store.get(K("k"))
        store.get(K("x"))
        stats = store.stats()
        assert (stats.hits, stats.misses, stats.sets) == (2, 1, 1)
