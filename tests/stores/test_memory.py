from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from steadycache import Cache, MemoryStore
from steadycache.codecs import JsonCodec
from steadycache.eviction import DEFAULT_POLICY, POLICIES
from steadycache.stores._sync.capabilities import Store
from tests._sync.conformance import StoreConformance, make_entry
from tests.conftest import ManualClock


class TestMemoryStoreConformance(StoreConformance):
    def make_store(self, clock: ManualClock) -> Store:
        return MemoryStore(max_entries=100, clock=clock)


class TestMemoryStoreByBytesConformance(StoreConformance):
    def make_store(self, clock: ManualClock) -> Store:
        return MemoryStore(max_bytes=10_000, clock=clock)


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_entry_limit_holds_for_every_policy(policy: str, clock: ManualClock) -> None:
    store = MemoryStore(max_entries=50, policy=policy, clock=clock)
    for i in range(500):
        store.set(f"k{i}", make_entry(i, clock.now))
        store.get(f"k{i // 2}")
        assert len(store) <= 50
    stats = store.stats()
    assert stats.entries == len(store) <= 50
    assert stats.evictions + stats.rejections == 500 - stats.entries


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_byte_limit_holds_for_every_policy(policy: str, clock: ManualClock) -> None:
    store = MemoryStore(max_bytes=1_000, policy=policy, clock=clock)
    for i in range(300):
        entry = make_entry(i, clock.now)
        entry.size = 10 + (i % 7) * 20
        store.set(f"k{i}", entry)
        assert store.stats().bytes <= 1_000


def test_memory_counts_expirations_and_entries(clock: ManualClock) -> None:
    store = MemoryStore(clock=clock)
    store.set("k", make_entry(1, clock.now, ttl=10))
    store.set("k", make_entry(2, clock.now, ttl=10))
    assert store.stats().entries == 1
    clock.advance(10)
    assert store.get("k") is None
    assert store.stats().expirations == 1


def test_both_limits(clock: ManualClock) -> None:
    store = MemoryStore(max_entries=5, max_bytes=10_000, clock=clock)
    for i in range(20):
        store.set(f"k{i}", make_entry(i, clock.now))
    assert len(store) == 5


def test_oversized_entry_is_rejected_not_stored(clock: ManualClock) -> None:
    store = MemoryStore(max_bytes=100, clock=clock)
    entry = make_entry("big", clock.now)
    entry.size = 500
    store.set("big", entry)
    assert store.get("big") is None
    assert store.stats().rejections == 1


def test_lru_keeps_recently_read(clock: ManualClock) -> None:
    store = MemoryStore(max_entries=2, policy="lru", clock=clock)
    store.set("a", make_entry(1, clock.now))
    store.set("b", make_entry(2, clock.now))
    store.get("a")
    store.set("c", make_entry(3, clock.now))
    assert store.get("a") is not None
    assert store.get("b") is None


def test_expired_entries_are_reclaimed_without_reads(clock: ManualClock) -> None:
    store = MemoryStore(max_entries=1_000, clock=clock)
    for i in range(100):
        store.set(f"old{i}", make_entry(i, clock.now, ttl=1))
    clock.advance(2)
    for i in range(20):
        store.set(f"new{i}", make_entry(i, clock.now))
    assert store.stats().expirations > 0
    store.reclaim_expired()
    assert len(store) == 20
    assert store.stats().expirations == 100


def test_delete_prefix(clock: ManualClock) -> None:
    store = MemoryStore(clock=clock)
    store.set("a:g0:x", make_entry(1, clock.now))
    store.set("a:g0:y", make_entry(1, clock.now))
    store.set("b:g0:x", make_entry(1, clock.now))
    assert store.delete_prefix("a:g0:") == 2
    assert len(store) == 1


def test_default_policy_is_registered() -> None:
    assert DEFAULT_POLICY in POLICIES
    assert MemoryStore().policy_name == DEFAULT_POLICY


def test_unbounded_store_is_refused() -> None:
    with pytest.raises(ValueError, match="unbounded"):
        MemoryStore(max_entries=None, max_bytes=None)


def test_thread_safety_under_contention(clock: ManualClock) -> None:
    store = MemoryStore(max_entries=64, clock=clock)
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(3_000):
                key = f"k{(i * 7 + offset) % 200}"
                if i % 3 == 0:
                    store.set(key, make_entry(i, clock.now))
                elif i % 11 == 0:
                    store.delete(key)
                else:
                    store.get(key)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stats = store.stats()
    assert stats.entries == len(store) <= 64
    assert stats.hits + stats.misses == sum(
        1 for n in range(8) for i in range(3_000) if i % 3 != 0 and i % 11 != 0
    )


class TestSerializingMemoryStoreConformance(StoreConformance):
    def make_store(self, clock: ManualClock) -> Store:
        return MemoryStore(max_entries=100, clock=clock, serialize=JsonCodec())


def test_serialized_entries_are_private_copies(clock: ManualClock) -> None:
    store = MemoryStore(clock=clock, serialize=JsonCodec())
    store.set("k", make_entry({"a": [1]}, clock.now))
    first = store.get("k")
    assert first is not None
    first.value["a"].append(2)
    second = store.get("k")
    assert second is not None
    assert second.value == {"a": [1]}


@pytest.mark.parametrize(
    "damage",
    [
        lambda blob: blob[: len(blob) // 2],  # truncated
        lambda blob: b"\x80\x04\x95" + blob[3:],  # a pickle, not ours
        lambda blob: blob[:-1] + bytes([blob[-1] ^ 1]),  # one bit flipped
        lambda blob: b"",
    ],
    ids=["truncated", "foreign", "bit-flip", "empty"],
)
def test_garbled_entry_is_a_miss_and_counted(
    clock: ManualClock, damage: Callable[[bytes], bytes], caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore(clock=clock, serialize=JsonCodec())
    cache = Cache(clock=clock)
    ns = cache.namespace("g", store=store)
    ns.set("k", {"seats": 3})
    packed = store._data["g:g0:sk"]
    packed.blob = damage(packed.blob)  # type: ignore[union-attr]
    with caplog.at_level("WARNING", logger="steadycache"):
        assert ns.get("k") is None
    assert "garbled entry dropped" in caplog.text
    assert store.stats().garbled == 1
    assert ns.stats().misses == 1
    assert ns.get_or_load("k", lambda: {"seats": 4}) == {"seats": 4}
    cache.close()


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_store_hits_equal_the_policy_driven_directly(policy: str, clock: ManualClock) -> None:
    # Hits reach some policies through a read buffer; drained before every write, the
    # policy must see exactly the sequence a direct simulation gives it.
    import random

    from steadycache.eviction import make_policy

    rng = random.Random(11)
    keys = [f"k{int(rng.paretovariate(1.2)) % 300}" for _ in range(6_000)]
    store = MemoryStore(max_entries=50, policy=policy, clock=clock)
    direct = make_policy(policy, 50)
    store_hits = direct_hits = 0
    for key in keys:
        if store.get(key) is not None:
            store_hits += 1
        else:
            store.set(key, make_entry(1, clock.now))
        if key in direct:
            direct.on_hit(key)
            direct_hits += 1
        else:
            direct.on_insert(key, 1)
    assert store_hits == direct_hits
