"""LRU: evict the least recently used key, as libCacheSim's ``LRU``."""

from __future__ import annotations

import math
from collections import OrderedDict

from steadycache.eviction.base import EvictionPolicy, Key


class LRUPolicy(EvictionPolicy):
    """Least recently used; a hit is one ``OrderedDict.move_to_end``."""

    name = "lru"
    concurrent_hits = True
    __slots__ = ("_order", "_used")

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        # Least recently used first; the value is the entry's size.
        self._order: OrderedDict[Key, int] = OrderedDict()
        self._used = 0

    def __contains__(self, key: Key) -> bool:
        return key in self._order

    def __len__(self) -> int:
        return len(self._order)

    @property
    def used(self) -> int:
        return self._used

    def on_hit(self, key: Key) -> None:
        self._order.move_to_end(key)

    def on_insert(self, key: Key, size: int, expires_at: float = math.inf) -> list[Key]:
        if size > self.capacity:
            return [key]
        victims: list[Key] = []
        order = self._order
        while self._used + size > self.capacity:
            victim, victim_size = order.popitem(last=False)
            self._used -= victim_size
            victims.append(victim)
        order[key] = size
        self._used += size
        return victims

    def on_update(self, key: Key, size: int, expires_at: float = math.inf) -> list[Key]:
        if size > self.capacity:
            self.on_remove(key)
            return [key]
        order = self._order
        self._used += size - order[key]
        order[key] = size
        order.move_to_end(key)
        victims: list[Key] = []
        # The updated key is now most recent, so it is evicted last (only if alone).
        while self._used > self.capacity:
            victim, victim_size = order.popitem(last=False)
            self._used -= victim_size
            victims.append(victim)
        return victims

    def on_remove(self, key: Key) -> None:
        self._used -= self._order.pop(key)

    def evict_one(self) -> Key | None:
        if not self._order:
            return None
        victim, victim_size = self._order.popitem(last=False)
        self._used -= victim_size
        return victim
