"""TTL-nearest: evict the key that would expire soonest anyway.

Keys without a TTL (``expires_at`` is infinite) and ties fall back to insertion order, so
with no TTLs at all this policy is FIFO. A lazy-deletion heap keeps every operation
O(log n) and ``on_hit`` free: reading a key does not change when it expires.
"""

from __future__ import annotations

import heapq
import itertools
import math

from steadycache.eviction.base import EvictionPolicy, Key

# Rebuild the heap when stale entries outnumber live ones by this factor (bounds memory).
_COMPACT_FACTOR = 2


class TTLPolicy(EvictionPolicy):
    """Evict the resident key with the smallest ``expires_at``; ties in insertion order."""

    name = "ttl"
    __slots__ = ("_entries", "_heap", "_sequence", "_used")

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        # key -> (expires_at, sequence, size); the heap holds (expires_at, sequence, key)
        # and an item is live only while it matches the key's current entry.
        self._entries: dict[Key, tuple[float, int, int]] = {}
        self._heap: list[tuple[float, int, Key]] = []
        self._sequence = itertools.count()
        self._used = 0

    def __contains__(self, key: Key) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def used(self) -> int:
        return self._used

    def on_hit(self, key: Key) -> None:
        pass

    def on_insert(self, key: Key, size: int, expires_at: float = math.inf) -> list[Key]:
        if size > self.capacity:
            return [key]
        victims: list[Key] = []
        while self._used + size > self.capacity:
            victims.append(self._pop_nearest())
        self._add(key, size, expires_at)
        return victims

    def on_update(self, key: Key, size: int, expires_at: float = math.inf) -> list[Key]:
        self.on_remove(key)
        return self.on_insert(key, size, expires_at)

    def on_remove(self, key: Key) -> None:
        _, _, size = self._entries.pop(key)
        self._used -= size
        if len(self._heap) > _COMPACT_FACTOR * len(self._entries) + 64:
            self._compact()

    def evict_one(self) -> Key | None:
        return self._pop_nearest() if self._entries else None

    def _add(self, key: Key, size: int, expires_at: float) -> None:
        sequence = next(self._sequence)
        self._entries[key] = (expires_at, sequence, size)
        heapq.heappush(self._heap, (expires_at, sequence, key))
        self._used += size

    def _pop_nearest(self) -> Key:
        entries = self._entries
        while True:
            _, sequence, key = heapq.heappop(self._heap)
            entry = entries.get(key)
            if entry is not None and entry[1] == sequence:
                del entries[key]
                self._used -= entry[2]
                return key

    def _compact(self) -> None:
        self._heap = [(exp, seq, key) for key, (exp, seq, _) in self._entries.items()]
        heapq.heapify(self._heap)
