"""Entries corrupted in place in Redis: a counted miss, never an exception, never a stuck key.

Promise for every read: a value that was written for that key, or a miss plus a counted
``garbled``; the next load replaces the entry (no corrupt value can win a version
comparison) and leaves no lease behind. The fuzz part draws corruptions from a seeded
generator; ``FUZZ_CASES`` (``make fuzz``) runs more of them.
"""

from __future__ import annotations

import os
import random
import struct

import pytest
import redis

from steadycache import AsyncCache, AsyncRedisBackend, Entry
from steadycache._core.entry import (
    DIGEST_SIZE,
    HEADER_SIZE,
    VERSION_OFFSET,
    pack_entry,
    pack_entry_v2,
)
from steadycache.stores.redis_backend import redis_key
from tests.concurrency import returning_async
from tests.redis.helpers import shared_policy

FUZZ_CASES = int(os.environ.get("FUZZ_CASES", "25"))

#: Byte ranges of the envelope's fields (a value of {"v": 1}, tags ("t",)).
FIELDS = {
    "magic": (0, 2),
    "format": (2, 3),
    "codec": (3, 4),
    "stored_at": (4, 12),
    "fresh_until": (12, 20),
    "stale_until": (20, 28),
    "load_cost": (28, 36),
    "version": (VERSION_OFFSET, VERSION_OFFSET + 8),
    "n_tags": (44, HEADER_SIZE),
    "tags": (HEADER_SIZE, HEADER_SIZE + 2 + 1 + 8),
    "payload": (HEADER_SIZE + 11, -DIGEST_SIZE),
    "digest": (-DIGEST_SIZE, None),
}


def cache_on(url: str) -> AsyncCache:
    return AsyncCache(redis=AsyncRedisBackend(url))


def flip(blob: bytes, position: int, bit: int) -> bytes:
    changed = bytearray(blob)
    changed[position] ^= 1 << bit
    return bytes(changed)


def foreign(blob: bytes, kind: str) -> bytes:
    """Values another writer could have left under the key."""
    entry = Entry(None, stored_at=1.0, fresh_until=4e9, stale_until=4e9, version=2**62)
    return {
        # A valid envelope of another codec, with a version no load can beat.
        "other codec": pack_entry(entry, b"\x81\xa1v\x07", codec_id=2),
        # The previous format's envelope whose CRC no longer matches.
        "format 2, corrupt": flip(pack_entry_v2(entry, b'{"v":9}', 1), 50, 0),
        "pickle": b"\x80\x04\x95" + blob[3:],
        "empty": b"",
        "text": b"hello",
        "truncated header": blob[: HEADER_SIZE - 3],
        "truncated payload": blob[:-3],
    }[kind]


async def read_after_corruption(url: str, corrupt: bytes) -> None:
    """Write, replace the stored bytes with ``corrupt``, then read through fresh caches."""
    raw = redis.Redis.from_url(url)
    try:
        async with cache_on(url) as writer:
            w = writer.namespace("n", shared_policy())
            await w.set("k", {"v": 1}, tags=("t",))
            key = redis_key("sc", w.stored_key("k"))
            raw.set(key, corrupt, keepttl=True)
        async with cache_on(url) as reader:
            r = reader.namespace("n", shared_policy())
            before = r.stats().garbled
            assert await r.get("k") is None  # a miss, not an exception
            assert r.stats().garbled == before + 1
            assert await r.get_or_load("k", returning_async({"v": 2})) == {"v": 2}
            assert r.stats().stale_sets_rejected == 0
            assert r.stats().older_writes_rejected == 0
        assert list(raw.scan_iter(match="sc:lease:*")) == []
        loads: list[int] = []
        async with cache_on(url) as healed:
            h = healed.namespace("n", shared_policy())
            assert await h.get_or_load("k", returning_async({"v": 3}, loads)) == {"v": 2}
            assert loads == []  # served from Redis: the key healed with one load
            assert h.stats().garbled == 0
    finally:
        raw.close()


async def envelope_of(url: str) -> bytes:
    raw = redis.Redis.from_url(url)
    try:
        async with cache_on(url) as writer:
            w = writer.namespace("n", shared_policy())
            await w.set("k", {"v": 1}, tags=("t",))
            blob = raw.get(redis_key("sc", w.stored_key("k")))
            assert isinstance(blob, bytes)
            raw.flushall()
            return blob
    finally:
        raw.close()


async def test_a_flipped_top_bit_of_the_version_does_not_pin_the_key(redis_url: str) -> None:
    blob = await envelope_of(redis_url)
    # The reported defect: a version that compares higher than any load's.
    await read_after_corruption(redis_url, flip(blob, VERSION_OFFSET, 7))


@pytest.mark.parametrize("field", sorted(FIELDS))
async def test_a_flipped_bit_in_any_field_is_a_counted_miss_that_heals(
    redis_url: str, field: str
) -> None:
    blob = await envelope_of(redis_url)
    start, end = FIELDS[field]
    positions = range(len(blob))[start:end]
    await read_after_corruption(redis_url, flip(blob, positions[len(positions) // 2], 0))


@pytest.mark.parametrize(
    "kind",
    [
        "other codec",
        "format 2, corrupt",
        "pickle",
        "empty",
        "text",
        "truncated header",
        "truncated payload",
    ],
)
async def test_foreign_and_truncated_values_are_counted_misses_that_heal(
    redis_url: str, kind: str
) -> None:
    blob = await envelope_of(redis_url)
    await read_after_corruption(redis_url, foreign(blob, kind))


async def test_a_valid_entry_nested_deeper_than_the_bound_is_a_miss(redis_url: str) -> None:
    # Written by a peer whose interpreter allows deeper recursion: valid envelope, 1,500
    # levels of JSON. Decoding it here must neither recurse out nor reach the caller.
    entry = Entry(None, stored_at=1.0, fresh_until=4e9, stale_until=4e9, version=1)
    deep = pack_entry(entry, b"[" * 1500 + b"]" * 1500, codec_id=1)
    await read_after_corruption(redis_url, deep)


async def test_fuzzed_corruptions_of_stored_entries(redis_url: str) -> None:
    blob = await envelope_of(redis_url)
    draw = random.Random(20261201)
    for _ in range(FUZZ_CASES):
        kind = draw.choice(["flip", "flips", "truncate", "splice"])
        if kind == "flip":
            corrupt = flip(blob, draw.randrange(len(blob)), draw.randrange(8))
        elif kind == "flips":
            corrupt = blob
            for _ in range(draw.randint(2, 8)):
                corrupt = flip(corrupt, draw.randrange(len(corrupt)), draw.randrange(8))
        elif kind == "truncate":
            corrupt = blob[: draw.randrange(len(blob))]
        else:  # another entry's header before this payload: a valid-looking frankenstein
            other = struct.pack(">q", draw.randrange(2**63))
            corrupt = blob[:VERSION_OFFSET] + other + blob[VERSION_OFFSET + 8 :]
        await read_after_corruption(redis_url, corrupt)
