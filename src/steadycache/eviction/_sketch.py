"""Approximate access counts for W-TinyLFU's admission filter.

A counting Bloom filter laid out as libCacheSim's ``minimalIncrementCBF``: sized for
``entries`` keys at a 0.1% error target (about 14.4 counters per entry and 10 hash
functions, derived by double hashing), every ``add`` increments all of a key's counters,
the estimate is their minimum, and ``halve`` ages all counts. Matching that layout matters
more than it seems: the filter is deliberately overloaded (it sees far more keys than
``entries``), so its noise is part of the policy's behaviour.

libCacheSim hashes with XXH64; here a key's built-in ``hash()`` goes through the splitmix64
finaliser, which is as well mixed and costs no dependency.
"""

from __future__ import annotations

import math
from collections.abc import Hashable

_MASK_32 = 0xFFFFFFFF
_MASK_64 = 0xFFFFFFFFFFFFFFFF
_LN2 = 0.693147180559945
_LN2_SQUARED = 0.480453013918201
_MAX_COUNTERS = 2**31 - 1


class CountingSketch:
    """Frequency estimates for recently seen keys; counts only over-estimate."""

    __slots__ = ("_counters", "_hash_count", "_width")

    def __init__(self, entries: int, error: float = 0.001) -> None:
        counters_per_entry = -math.log(error) / _LN2_SQUARED
        self._hash_count = math.ceil(_LN2 * counters_per_entry)
        width = min(math.ceil(counters_per_entry * max(entries, 0)), _MAX_COUNTERS)
        # Fewer counters than hash functions would make every key collide with itself.
        self._width = max(width, 2 * self._hash_count)
        self._counters = [0] * self._width

    @property
    def width(self) -> int:
        return self._width

    def indexes(self, key: Hashable) -> list[int]:
        """The key's counter positions; callers touching one key twice compute them once."""
        # Double hashing over a mixed hash, as libCacheSim does (first + i * step), but with
        # both terms reduced modulo the width first: small ints keep CPython on its fast path.
        h = (hash(key) * 0x9E3779B97F4A7C15) & _MASK_64
        h ^= h >> 29
        h = (h * 0xBF58476D1CE4E5B9) & _MASK_64
        width = self._width
        first = (h >> 32) % width
        step = (h & _MASK_32) % (width - 1) + 1
        return [x % width for x in range(first, first + self._hash_count * step, step)]

    def add_at(self, indexes: list[int]) -> None:
        counters = self._counters
        for index in indexes:
            counters[index] += 1

    def estimate_at(self, indexes: list[int]) -> int:
        counters = self._counters
        return min([counters[index] for index in indexes])

    def add(self, key: Hashable) -> None:
        self.add_at(self.indexes(key))

    def estimate(self, key: Hashable) -> int:
        return self.estimate_at(self.indexes(key))

    def halve(self) -> None:
        """Age every count so that old popularity fades."""
        self._counters = [count >> 1 for count in self._counters]
