"""Approximate access counts for W-TinyLFU's admission filter.

A counting Bloom filter laid out as libCacheSim's ``minimalIncrementCBF``: sized for
``entries`` keys at a 0.1% error target (about 14.4 counters per entry and 10 hash
functions, derived by double hashing), every ``add`` increments all of a key's counters
(despite the reference's name, not only the minimal ones), the estimate is their minimum,
and ``halve`` ages all counts. Matching that layout matters more than it seems: the filter
is deliberately overloaded (it sees far more keys than ``entries``), so its noise is part
of the policy's behaviour.

Hashing is libCacheSim's too: XXH64 (implemented here for one 64-bit word, no dependency)
of the integer key, or of ``hash(key)`` for other keys, with libCacheSim's two seeds.
"""

from __future__ import annotations

import math
from collections.abc import Hashable

_MASK_32 = 0xFFFFFFFF
_MASK_64 = 0xFFFFFFFFFFFFFFFF
_LN2 = 0.693147180559945
_LN2_SQUARED = 0.480453013918201
_MAX_COUNTERS = 2**31 - 1
_SEED_0, _SEED_1 = 0x12345678, 0x12344321  # libCacheSim's HASH_SEED0 and HASH_SEED1
_PRIME_1 = 0x9E3779B185EBCA87
_PRIME_2 = 0xC2B2AE3D27D4EB4F
_PRIME_3 = 0x165667B19E3779F9
_PRIME_4 = 0x85EBCA77C2B2AE63
_PRIME_5 = 0x27D4EB2F165667C5


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
        # libCacheSim: a, b = XXH64(id, seed0), XXH64(id, seed1) truncated to 32 bits, and
        # position i = (a + i * b) mod 2**32 mod width. Integer keys hash exactly as
        # libCacheSim's object ids do, so simulations agree request for request.
        value = key if type(key) is int else hash(key)
        first = _xxh64_of_u64(value & _MASK_64, _SEED_0) & _MASK_32
        step = _xxh64_of_u64(value & _MASK_64, _SEED_1) & _MASK_32
        width = self._width
        if not step:
            return [first % width] * self._hash_count
        end = first + self._hash_count * step
        return [(x & _MASK_32) % width for x in range(first, end, step)]

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


def _xxh64_of_u64(value: int, seed: int) -> int:
    """XXH64 of one little-endian 64-bit word (the 8-byte path of the reference algorithm)."""
    lane = (value * _PRIME_2) & _MASK_64
    lane = ((((lane << 31) | (lane >> 33)) & _MASK_64) * _PRIME_1) & _MASK_64
    h = ((seed + _PRIME_5 + 8) & _MASK_64) ^ lane
    h = (((((h << 27) | (h >> 37)) & _MASK_64) * _PRIME_1) + _PRIME_4) & _MASK_64
    h = ((h ^ (h >> 33)) * _PRIME_2) & _MASK_64
    h = ((h ^ (h >> 29)) * _PRIME_3) & _MASK_64
    return h ^ (h >> 32)
