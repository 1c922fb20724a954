"""LFU: evict the least frequently used key; ties go to the key that reached that count first.

Mirrors libCacheSim's ``LFU``: a key enters with count 1, every hit adds one, counts are
forgotten on eviction, and each count has a FIFO bucket. The minimum non-empty count is
found through a lazy min-heap of counts, so every operation is O(1) amortised (libCacheSim
scans upwards instead; the choice of victim is the same).
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict

from steadycache.eviction.base import EvictionPolicy, Key


class LFUPolicy(EvictionPolicy):
    """Least frequently used with FIFO tie-breaking inside a frequency."""

    name = "lfu"
    __slots__ = ("_buckets", "_counts", "_frequency_heap", "_in_heap", "_sizes", "_used")

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self._sizes: dict[Key, int] = {}
        self._counts: dict[Key, int] = {}
        # count -> keys with that count, in the order they reached it.
        self._buckets: dict[int, OrderedDict[Key, None]] = {}
        # Counts that have (or had) a bucket; stale ones are skipped when popped.
        self._frequency_heap: list[int] = []
        # Each count sits in the heap at most once, so stale counts cannot pile up.
        self._in_heap: set[int] = set()
        self._used = 0

    def __contains__(self, key: Key) -> bool:
        return key in self._sizes

    def __len__(self) -> int:
        return len(self._sizes)

    @property
    def used(self) -> int:
        return self._used

    def on_hit(self, key: Key) -> None:
        count = self._counts[key]
        self._counts[key] = count + 1
        self._leave_bucket(key, count)
        self._enter_bucket(key, count + 1)

    def on_insert(self, key: Key, size: int, expires_at: float = math.inf) -> list[Key]:
        if size > self.capacity:
            return [key]
        victims: list[Key] = []
        while self._used + size > self.capacity:
            victims.append(self._evict())
        self._sizes[key] = size
        self._counts[key] = 1
        self._enter_bucket(key, 1)
        self._used += size
        return victims

    def on_update(self, key: Key, size: int, expires_at: float = math.inf) -> list[Key]:
        if size > self.capacity:
            self.on_remove(key)
            return [key]
        self._used += size - self._sizes[key]
        self._sizes[key] = size
        self.on_hit(key)
        victims: list[Key] = []
        while self._used > self.capacity:
            victims.append(self._evict())
        return victims

    def on_remove(self, key: Key) -> None:
        self._used -= self._sizes.pop(key)
        self._leave_bucket(key, self._counts.pop(key))

    def evict_one(self) -> Key | None:
        return self._evict() if self._sizes else None

    def _enter_bucket(self, key: Key, count: int) -> None:
        bucket = self._buckets.get(count)
        if bucket is None:
            bucket = self._buckets[count] = OrderedDict()
            if count not in self._in_heap:
                self._in_heap.add(count)
                heapq.heappush(self._frequency_heap, count)
        bucket[key] = None

    def _leave_bucket(self, key: Key, count: int) -> None:
        bucket = self._buckets[count]
        del bucket[key]
        if not bucket:
            # Dropping empty buckets keeps memory bounded by the number of live counts.
            del self._buckets[count]

    def _evict(self) -> Key:
        heap = self._frequency_heap
        buckets = self._buckets
        while heap[0] not in buckets:
            self._in_heap.discard(heapq.heappop(heap))
        count = heap[0]
        bucket = buckets[count]
        victim, _ = bucket.popitem(last=False)
        if not bucket:
            del buckets[count]
        del self._counts[victim]
        self._used -= self._sizes.pop(victim)
        return victim
