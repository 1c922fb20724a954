"""The store contract, as tests. Every store's test module subclasses ``StoreConformance``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from steadycache import Entry
from steadycache.stores.base import Store
from tests.conftest import ManualClock

StoreFactory = Callable[[ManualClock], Store]


def make_entry(value: object, now: float, ttl: float = 60.0, stale: float = 0.0) -> Entry:
    return Entry(
        value, stored_at=now, fresh_until=now + ttl, stale_until=now + ttl + stale, size=10
    )


class StoreConformance:
    """Subclasses provide ``make_store(clock)``."""

    def make_store(self, clock: ManualClock) -> Store:
        raise NotImplementedError

    @pytest.fixture
    def store(self, clock: ManualClock) -> Store:
        return self.make_store(clock)

    def test_get_missing_is_none(self, store: Store) -> None:
        assert store.get("absent") is None

    def test_set_then_get(self, store: Store, clock: ManualClock) -> None:
        entry = make_entry({"a": 1}, clock.now)
        store.set("k", entry)
        found = store.get("k")
        assert found is not None
        assert found.value == {"a": 1}
        assert found.fresh_until == entry.fresh_until

    def test_overwrite(self, store: Store, clock: ManualClock) -> None:
        store.set("k", make_entry(1, clock.now))
        store.set("k", make_entry(2, clock.now))
        found = store.get("k")
        assert found is not None
        assert found.value == 2
        assert store.stats().entries == 1

    def test_delete(self, store: Store, clock: ManualClock) -> None:
        store.set("k", make_entry(1, clock.now))
        assert store.delete("k") is True
        assert store.delete("k") is False
        assert store.get("k") is None

    def test_many(self, store: Store, clock: ManualClock) -> None:
        store.set_many({f"k{i}": make_entry(i, clock.now) for i in range(5)})
        found = store.get_many(["k0", "nope", "k4"])
        assert [e.value if e else None for e in found] == [0, None, 4]
        assert store.delete_many(["k0", "k1", "nope"]) == 2
        assert store.get("k1") is None

    def test_stale_but_not_dead_is_returned(self, store: Store, clock: ManualClock) -> None:
        store.set("k", make_entry(1, clock.now, ttl=10, stale=20))
        clock.advance(15)
        assert store.get("k") is not None  # the facade decides what stale means

    def test_dead_entries_are_misses_and_expirations(
        self, store: Store, clock: ManualClock
    ) -> None:
        store.set("k", make_entry(1, clock.now, ttl=10))
        clock.advance(10)
        assert store.get("k") is None
        stats = store.stats()
        assert stats.expirations == 1
        assert stats.hits == 0
        assert stats.misses == 1

    def test_already_dead_entry_is_not_stored(self, store: Store, clock: ManualClock) -> None:
        store.set("k", make_entry(1, clock.now - 100, ttl=10))
        assert store.get("k") is None

    def test_clear(self, store: Store, clock: ManualClock) -> None:
        store.set_many({f"k{i}": make_entry(i, clock.now) for i in range(3)})
        store.clear()
        assert store.get_many(["k0", "k1", "k2"]) == [None, None, None]

    def test_counters(self, store: Store, clock: ManualClock) -> None:
        store.set("k", make_entry(1, clock.now))
        store.get("k")
        store.get("k")
        store.get("x")
        stats = store.stats()
        assert (stats.hits, stats.misses, stats.sets) == (2, 1, 1)
