"""LRU and FIFO against list-based reference models, on Hypothesis-generated workloads."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from steadycache.eviction import make_policy


@dataclass
class ListModel:
    """The obvious implementation: a list of (key, size), the next victim first."""

    capacity: int
    reorder_on_access: bool  # True: LRU, False: FIFO
    entries: list[tuple[int, int]] = field(default_factory=list)

    @property
    def used(self) -> int:
        return sum(size for _, size in self.entries)

    def key_order(self) -> list[int]:
        return [key for key, _ in self.entries]

    def _index(self, key: int) -> int:
        return self.key_order().index(key)

    def hit(self, key: int) -> None:
        if self.reorder_on_access:
            self.entries.append(self.entries.pop(self._index(key)))

    def insert(self, key: int, size: int) -> list[int]:
        if size > self.capacity:
            return [key]
        victims = []
        while self.used + size > self.capacity:
            victims.append(self.entries.pop(0)[0])
        self.entries.append((key, size))
        return victims

    def update(self, key: int, size: int) -> list[int]:
        index = self._index(key)
        if size > self.capacity:
            self.entries.pop(index)
            return [key]
        self.entries[index] = (key, size)
        self.hit(key)
        victims = []
        while self.used > self.capacity:
            victims.append(self.entries.pop(0)[0])
        return victims

    def remove(self, key: int) -> None:
        self.entries.pop(self._index(key))

    def evict_one(self) -> int | None:
        return self.entries.pop(0)[0] if self.entries else None


operations = st.lists(
    st.tuples(
        st.sampled_from(["access", "update", "remove", "evict_one"]),
        st.integers(min_value=0, max_value=15),  # key
        st.integers(min_value=1, max_value=12),  # size
    ),
    max_size=120,
)


def _check_against_model(name: str, capacity: int, ops: list[tuple[str, int, int]]) -> None:
    policy = make_policy(name, capacity)
    model = ListModel(capacity, reorder_on_access=(name == "lru"))
    for action, key, size in ops:
        resident = key in model.key_order()
        assert (key in policy) == resident
        if action == "access":
            if resident:
                policy.on_hit(key)
                model.hit(key)
            else:
                assert policy.on_insert(key, size) == model.insert(key, size)
        elif action == "update" and resident:
            assert policy.on_update(key, size) == model.update(key, size)
        elif action == "remove" and resident:
            policy.on_remove(key)
            model.remove(key)
        elif action == "evict_one":
            assert policy.evict_one() == model.evict_one()
        assert policy.used == model.used
        assert len(policy) == len(model.entries)
    # Same residents, and the same eviction order from here on.
    assert [policy.evict_one() for _ in range(len(model.entries))] == model.key_order()


@settings(max_examples=300, deadline=None)
@given(capacity=st.integers(min_value=1, max_value=40), ops=operations)
def test_lru_matches_list_model(capacity: int, ops: list[tuple[str, int, int]]) -> None:
    _check_against_model("lru", capacity, ops)


@settings(max_examples=300, deadline=None)
@given(capacity=st.integers(min_value=1, max_value=40), ops=operations)
def test_fifo_matches_list_model(capacity: int, ops: list[tuple[str, int, int]]) -> None:
    _check_against_model("fifo", capacity, ops)


@settings(max_examples=200, deadline=None)
@given(ops=operations)
def test_ttl_without_expiry_is_fifo(ops: list[tuple[str, int, int]]) -> None:
    """With no TTLs the TTL-nearest policy falls back to insertion order, i.e. FIFO...

    ...except that an update re-stamps the key as newly written, so updates are left out.
    """
    ttl, fifo = make_policy("ttl", 30), make_policy("fifo", 30)
    for action, key, size in ops:
        if action == "update":
            continue
        if action == "access":
            if key in fifo:
                ttl.on_hit(key)
                fifo.on_hit(key)
            else:
                assert ttl.on_insert(key, size) == fifo.on_insert(key, size)
        elif action == "remove" and key in fifo:
            ttl.on_remove(key)
            fifo.on_remove(key)
        elif action == "evict_one":
            assert ttl.evict_one() == fifo.evict_one()
