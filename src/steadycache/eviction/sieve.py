"""SIEVE (Zhang et al., NSDI 2024): a FIFO queue with a visited bit and a moving hand.

A hit only sets the visited bit. To evict, the hand walks from the oldest entry towards
the newest, clearing visited bits, and evicts the first unvisited entry; it stays there
for the next eviction. Mirrors libCacheSim's ``Sieve``.
"""

from __future__ import annotations

import math
from typing import Any

from steadycache.eviction.base import EvictionPolicy, Key

# A node is a list [newer, older, key, size, visited]: a list rather than an object because
# attribute-free indexing is the fastest mutable record in CPython for this hot loop.
_NEWER, _OLDER, _KEY, _SIZE, _VISITED = range(5)
Node = list[Any]


class SievePolicy(EvictionPolicy):
    """SIEVE eviction; ``on_hit`` is a single store into the key's node."""

    name = "sieve"
    concurrent_hits = True
    __slots__ = ("_hand", "_newest", "_nodes", "_oldest", "_used")

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self._nodes: dict[Key, Node] = {}
        self._newest: Node | None = None
        self._oldest: Node | None = None
        # None means "start from the oldest entry" (first eviction, or wrapped around).
        self._hand: Node | None = None
        self._used = 0

    def __contains__(self, key: Key) -> bool:
        return key in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    @property
    def used(self) -> int:
        return self._used

    def on_hit(self, key: Key) -> None:
        self._nodes[key][4] = 1  # _VISITED

    def on_insert(self, key: Key, size: int, expires_at: float = math.inf) -> list[Key]:
        if size > self.capacity:
            return [key]
        victims: list[Key] = []
        while self._used + size > self.capacity:
            victims.append(self._evict())
        node: Node = [None, self._newest, key, size, 0]
        if self._newest is None:
            self._oldest = node
        else:
            self._newest[_NEWER] = node
        self._newest = node
        self._nodes[key] = node
        self._used += size
        return victims

    def on_update(self, key: Key, size: int, expires_at: float = math.inf) -> list[Key]:
        if size > self.capacity:
            self.on_remove(key)
            return [key]
        node = self._nodes[key]
        self._used += size - node[_SIZE]
        node[_SIZE] = size
        node[_VISITED] = 1
        victims: list[Key] = []
        while self._used > self.capacity:
            victims.append(self._evict())
        return victims

    def on_remove(self, key: Key) -> None:
        node = self._nodes.pop(key)
        if node is self._hand:
            self._hand = node[_NEWER]
        self._unlink(node)

    def evict_one(self) -> Key | None:
        return self._evict() if self._nodes else None

    def _evict(self) -> Key:
        node = self._hand if self._hand is not None else self._oldest
        assert node is not None
        while node[_VISITED]:
            node[_VISITED] = 0
            node = node[_NEWER] if node[_NEWER] is not None else self._oldest
            assert node is not None
        self._hand = node[_NEWER]
        key: Key = node[_KEY]
        del self._nodes[key]
        self._unlink(node)
        return key

    def _unlink(self, node: Node) -> None:
        newer, older = node[_NEWER], node[_OLDER]
        if newer is None:
            self._newest = older
        else:
            newer[_OLDER] = older
        if older is None:
            self._oldest = newer
        else:
            older[_NEWER] = newer
        self._used -= node[_SIZE]
        node[_NEWER] = node[_OLDER] = None
