"""The eviction-policy seam: which resident key leaves when the store is over capacity.

A policy is pure bookkeeping over keys and their sizes. It never sees values and never
takes a lock: the memory store calls it while holding its own lock, and the `simulate`
command drives it directly over a trace. Capacity is in whatever unit the caller chose:
entries (every size is 1) or bytes.

Semantics follow libCacheSim so hit ratios can be compared with the reference simulator:
on a miss the caller inserts; the policy evicts until ``used + size <= capacity``; an
object larger than the whole capacity is not admitted (it is returned as its own victim).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Hashable
from typing import ClassVar

Key = Hashable


class EvictionPolicy(ABC):
    """Tracks resident keys and picks victims. Subclasses differ in which key they pick."""

    #: Registry name (``lru``, ``arc``, ...), as used by ``steadycache simulate --policy``.
    name: ClassVar[str]

    #: True when ``on_hit`` is one step that cannot leave the policy inconsistent if it runs
    #: beside a writer (a counter bump, a flag, one ``move_to_end``) and tolerates a key that
    #: was just evicted (``KeyError``). The memory store then serves hits without its lock.
    concurrent_hits: ClassVar[bool] = False

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"eviction capacity must be positive, got {capacity!r}")
        self.capacity = capacity

    @abstractmethod
    def __contains__(self, key: Key) -> bool:
        """Whether the key is resident (ghost entries do not count)."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of resident keys."""

    @property
    @abstractmethod
    def used(self) -> int:
        """Sum of the sizes of resident keys."""

    @abstractmethod
    def on_hit(self, key: Key) -> None:
        """A resident key was read."""

    @abstractmethod
    def on_insert(self, key: Key, size: int, expires_at: float = math.inf) -> list[Key]:
        """Admit a key that is not resident; return the keys evicted to make room.

        The returned list contains ``key`` itself when the policy declined to admit it
        (too large for the capacity, or refused by an admission filter).
        """

    @abstractmethod
    def on_update(self, key: Key, size: int, expires_at: float = math.inf) -> list[Key]:
        """A resident key was overwritten (counts as an access); return evicted keys."""

    @abstractmethod
    def on_remove(self, key: Key) -> None:
        """The store dropped a resident key itself (delete, expiry); no ghost is kept."""

    @abstractmethod
    def evict_one(self) -> Key | None:
        """Evict one key by this policy's choice (for a secondary limit); None when empty."""
