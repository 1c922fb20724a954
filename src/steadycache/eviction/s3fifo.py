"""S3-FIFO (Yang et al., SOSP 2023): a small probationary FIFO, a main FIFO and a ghost FIFO.

Configured as libCacheSim's ``S3FIFO`` defaults (also the Python binding's defaults):
small queue 10% of capacity, ghost 90% of capacity (tracked in the same size unit),
an entry moves from small to main once it was hit ``move_to_main_threshold = 2`` times,
main is a CLOCK with a 2-bit counter. As in libCacheSim's current version, until the first
eviction a new key goes to main once the small queue is full.

One deliberate difference: libCacheSim refuses a key whose size is at least the small
queue's capacity; here it goes to main instead, so a tiny cache (capacity < 10 entries,
small queue of 0) still admits keys. Comparisons use caches far larger than that.
"""

from __future__ import annotations

import math
from collections import OrderedDict

from steadycache.eviction.base import EvictionPolicy, Key

SMALL_SIZE_RATIO = 0.10
GHOST_SIZE_RATIO = 0.90
MOVE_TO_MAIN_THRESHOLD = 2
_MAX_MAIN_FREQUENCY = 3  # main is a CLOCK with a 2-bit counter

# An entry is a list [size, hits]: a hit increments in place, with no allocation.
_SIZE, _HITS = 0, 1


class S3FIFOPolicy(EvictionPolicy):
    """S3-FIFO; ``on_hit`` increments a counter in place."""

    name = "s3fifo"
    concurrent_hits = True
    __slots__ = (
        "_entries",
        "_ghost",
        "_ghost_capacity",
        "_ghost_used",
        "_has_evicted",
        "_main",
        "_main_capacity",
        "_main_used",
        "_small",
        "_small_capacity",
        "_small_used",
    )

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self._small_capacity = int(capacity * SMALL_SIZE_RATIO)
        self._main_capacity = capacity - self._small_capacity
        self._ghost_capacity = int(capacity * GHOST_SIZE_RATIO)
        self._entries: dict[Key, list[int]] = {}
        # Oldest first. Values unused: the entry list holds the size and hit count.
        self._small: OrderedDict[Key, None] = OrderedDict()
        self._main: OrderedDict[Key, None] = OrderedDict()
        self._ghost: OrderedDict[Key, int] = OrderedDict()  # key -> size, oldest first
        self._small_used = 0
        self._main_used = 0
        self._ghost_used = 0
        self._has_evicted = False

    def __contains__(self, key: Key) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def used(self) -> int:
        return self._small_used + self._main_used

    def on_hit(self, key: Key) -> None:
        self._entries[key][1] += 1  # _HITS

    def on_insert(self, key: Key, size: int, expires_at: float = math.inf) -> list[Key]:
        if size > self.capacity:
            return [key]
        ghost_size = self._ghost.pop(key, None)
        if ghost_size is not None:
            self._ghost_used -= ghost_size
        victims: list[Key] = []
        while self._small_used + self._main_used + size > self.capacity:
            victim = self._evict()
            if victim is not None:
                victims.append(victim)
        self._entries[key] = [size, 0]
        if (
            ghost_size is not None
            or size >= self._small_capacity
            or (not self._has_evicted and self._small_used >= self._small_capacity)
        ):
            self._main[key] = None
            self._main_used += size
        else:
            self._small[key] = None
            self._small_used += size
        return victims

    def on_update(self, key: Key, size: int, expires_at: float = math.inf) -> list[Key]:
        if size > self.capacity:
            self.on_remove(key)
            return [key]
        entry = self._entries[key]
        if key in self._main:
            self._main_used += size - entry[_SIZE]
        else:
            self._small_used += size - entry[_SIZE]
        entry[_SIZE] = size
        entry[_HITS] += 1
        victims: list[Key] = []
        while self._small_used + self._main_used > self.capacity:
            victim = self._evict()
            if victim is not None:
                victims.append(victim)
        return victims

    def on_remove(self, key: Key) -> None:
        size = self._entries.pop(key)[_SIZE]
        if key in self._main:
            del self._main[key]
            self._main_used -= size
        else:
            del self._small[key]
            self._small_used -= size

    def evict_one(self) -> Key | None:
        while self._entries:
            victim = self._evict()
            if victim is not None:
                return victim
        return None

    def _evict(self) -> Key | None:
        """One round of libCacheSim's S3FIFO_evict; None when it only moved keys to main."""
        self._has_evicted = True
        if self._main_used > self._main_capacity or self._small_used == 0:
            return self._evict_main()
        return self._evict_small()

    def _evict_small(self) -> Key | None:
        small, entries = self._small, self._entries
        while small:
            key, _ = small.popitem(last=False)
            entry = entries[key]
            size = entry[_SIZE]
            self._small_used -= size
            if entry[_HITS] >= MOVE_TO_MAIN_THRESHOLD:
                entry[_HITS] = 0
                self._main[key] = None
                self._main_used += size
                continue
            del entries[key]
            self._remember_ghost(key, size)
            return key
        return None

    def _evict_main(self) -> Key | None:
        main, entries = self._main, self._entries
        while main:
            key = next(iter(main))
            entry = entries[key]
            hits = entry[_HITS]
            if hits >= 1:
                # Second chance: back of the queue, one step down the 2-bit counter.
                main.move_to_end(key)
                entry[_HITS] = min(hits, _MAX_MAIN_FREQUENCY) - 1
                continue
            del main[key]
            del entries[key]
            self._main_used -= entry[_SIZE]
            return key
        return None

    def _remember_ghost(self, key: Key, size: int) -> None:
        if size > self._ghost_capacity:
            return
        ghost = self._ghost
        while self._ghost_used + size > self._ghost_capacity:
            _, old_size = ghost.popitem(last=False)
            self._ghost_used -= old_size
        ghost[key] = size
        self._ghost_used += size
