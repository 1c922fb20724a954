"""ARC (Megiddo & Modha, FAST 2003): recency list T1 and frequency list T2, each with a ghost.

Follows libCacheSim's ``ARC`` step for step, including its size-aware generalisation: the
lists are measured in the capacity's unit, the target size ``p`` of T1 is a float moved by
``max(|B2|/|B1|, 1)`` on a B1 ghost hit (the mirror on a B2 ghost hit), a ghost hit makes
room by REPLACE alone, and a plain miss trims B1 whenever B1 is non-empty.
"""

from __future__ import annotations

import math
from collections import OrderedDict

from steadycache.eviction.base import EvictionPolicy, Key


class ARCPolicy(EvictionPolicy):
    """Adaptive Replacement Cache; a hit is one or two ``OrderedDict`` operations."""

    name = "arc"
    __slots__ = ("_b1", "_b1_used", "_b2", "_b2_used", "_p", "_t1", "_t1_used", "_t2", "_t2_used")

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        # All four lists map key -> size, least recently used first.
        self._t1: OrderedDict[Key, int] = OrderedDict()
        self._t2: OrderedDict[Key, int] = OrderedDict()
        self._b1: OrderedDict[Key, int] = OrderedDict()
        self._b2: OrderedDict[Key, int] = OrderedDict()
        self._t1_used = self._t2_used = self._b1_used = self._b2_used = 0
        self._p = 0.0  # target size of T1 (a float, as in libCacheSim)

    def __contains__(self, key: Key) -> bool:
        return key in self._t1 or key in self._t2

    def __len__(self) -> int:
        return len(self._t1) + len(self._t2)

    @property
    def used(self) -> int:
        return self._t1_used + self._t2_used

    def on_hit(self, key: Key) -> None:
        size = self._t1.pop(key, None)
        if size is None:
            self._t2.move_to_end(key)
            return
        self._t1_used -= size
        self._t2[key] = size
        self._t2_used += size

    def on_insert(self, key: Key, size: int, expires_at: float = math.inf) -> list[Key]:
        if size > self.capacity:
            return [key]
        # A ghost hit adapts p first (with both ghost sizes still counting the key); while the
        # cache is then full, plain REPLACE makes room (the paper's cases II and III).
        ghost_hit = in_b2 = False
        if key in self._b1:
            ghost_hit = True
            self._p = min(self._p + max(self._b2_used / self._b1_used, 1.0), self.capacity)
            self._b1_used -= self._b1.pop(key)
        elif key in self._b2:
            ghost_hit = in_b2 = True
            self._p = max(self._p - max(self._b1_used / self._b2_used, 1.0), 0.0)
            self._b2_used -= self._b2.pop(key)
        victims: list[Key] = []
        while self._t1_used + self._t2_used + size > self.capacity:
            if ghost_hit:
                victims.append(self._replace(in_b2))
            else:
                victims.append(self._make_room(size))
        if ghost_hit:
            self._t2[key] = size
            self._t2_used += size
        else:
            self._t1[key] = size
            self._t1_used += size
        return victims

    def on_update(self, key: Key, size: int, expires_at: float = math.inf) -> list[Key]:
        if size > self.capacity:
            self.on_remove(key)
            return [key]
        self.on_hit(key)  # the key is now in T2
        self._t2_used += size - self._t2[key]
        self._t2[key] = size
        victims: list[Key] = []
        while self._t1_used + self._t2_used > self.capacity:
            victims.append(self._make_room(0))
        return victims

    def on_remove(self, key: Key) -> None:
        size = self._t1.pop(key, None)
        if size is not None:
            self._t1_used -= size
        else:
            self._t2_used -= self._t2.pop(key)

    def evict_one(self) -> Key | None:
        if self._t1 or self._t2:
            return self._make_room(0)
        return None

    def _make_room(self, incoming: int) -> Key:
        """libCacheSim's ARC miss path (case IV): trim a ghost list if needed, then REPLACE."""
        capacity = self.capacity
        if self._t1_used + self._b1_used + incoming > capacity:
            if self._b1_used > 0:
                _, ghost_size = self._b1.popitem(last=False)
                self._b1_used -= ghost_size
                return self._replace(False)
            # T1 alone fills the cache (B1 is empty): evict T1's LRU outright, no ghost.
            victim, victim_size = self._t1.popitem(last=False)
            self._t1_used -= victim_size
            return victim
        directory_used = self._t1_used + self._b1_used + self._t2_used + self._b2_used
        if directory_used >= 2 * capacity and self._b2_used > 0:
            _, ghost_size = self._b2.popitem(last=False)
            self._b2_used -= ghost_size
        return self._replace(False)

    def _replace(self, in_b2: bool) -> Key:
        """The paper's REPLACE: demote the LRU of T1 or T2 to its ghost list."""
        t1_used = self._t1_used
        if (t1_used > 0 and (t1_used > self._p or (t1_used == self._p and in_b2))) or not self._t2:
            victim, size = self._t1.popitem(last=False)
            self._t1_used -= size
            self._b1[victim] = size
            self._b1_used += size
        else:
            victim, size = self._t2.popitem(last=False)
            self._t2_used -= size
            self._b2[victim] = size
            self._b2_used += size
        return victim
