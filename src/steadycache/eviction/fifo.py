"""FIFO: evict in insertion order; a hit changes nothing (the cheapest possible ``on_hit``)."""

from __future__ import annotations

import math
from collections import OrderedDict

from steadycache.eviction.base import EvictionPolicy, Key


class FIFOPolicy(EvictionPolicy):
    """First in, first out, as libCacheSim's ``FIFO``."""

    name = "fifo"
    concurrent_hits = True
    __slots__ = ("_queue", "_used")

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        # Oldest first; the value is the entry's size.
        self._queue: OrderedDict[Key, int] = OrderedDict()
        self._used = 0

    def __contains__(self, key: Key) -> bool:
        return key in self._queue

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def used(self) -> int:
        return self._used

    def on_hit(self, key: Key) -> None:
        pass

    def on_insert(self, key: Key, size: int, expires_at: float = math.inf) -> list[Key]:
        if size > self.capacity:
            return [key]
        victims: list[Key] = []
        queue = self._queue
        while self._used + size > self.capacity:
            victim, victim_size = queue.popitem(last=False)
            self._used -= victim_size
            victims.append(victim)
        queue[key] = size
        self._used += size
        return victims

    def on_update(self, key: Key, size: int, expires_at: float = math.inf) -> list[Key]:
        if size > self.capacity:
            self.on_remove(key)
            return [key]
        self._used += size - self._queue[key]
        self._queue[key] = size
        victims: list[Key] = []
        while self._used > self.capacity:
            victims.append(self._pop_oldest())
        return victims

    def on_remove(self, key: Key) -> None:
        self._used -= self._queue.pop(key)

    def evict_one(self) -> Key | None:
        return self._pop_oldest() if self._queue else None

    def _pop_oldest(self) -> Key:
        victim, victim_size = self._queue.popitem(last=False)
        self._used -= victim_size
        return victim
