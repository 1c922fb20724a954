from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steadycache._core.entry import (
    DIGEST_SIZE,
    VERSION_OFFSET,
    Entry,
    pack_entry,
    pack_entry_v2,
    unpack_entry,
)
from steadycache.errors import GarbledEntryError

entries = st.builds(
    lambda stored, fresh, stale, cost, version, tags: Entry(
        None,
        stored_at=stored,
        fresh_until=stored + fresh,
        stale_until=stored + fresh + stale,
        load_cost=cost,
        version=version,
        tags=tuple(tag for tag, _ in tags),
        tag_versions=tuple(tag_version for _, tag_version in tags),
    ),
    st.floats(0, 2e9),
    st.floats(0, 1e6),
    st.floats(0, 1e6),
    st.floats(0, 100),
    st.integers(0, 2**62),
    st.lists(st.tuples(st.text(max_size=10), st.integers(0, 2**64 - 1)), max_size=4),
)


@given(entries, st.binary(max_size=64))
def test_envelope_round_trip(entry: Entry, payload: bytes) -> None:
    blob = pack_entry(entry, payload, codec_id=1)
    decoded, decoded_payload = unpack_entry(blob, codec_id=1)
    assert decoded_payload == payload
    for name in (
        "stored_at",
        "fresh_until",
        "stale_until",
        "load_cost",
        "version",
        "tags",
        "tag_versions",
    ):
        assert getattr(decoded, name) == getattr(entry, name)
    assert blob[2] == 3  # the format version byte


@given(entries, st.binary(max_size=64))
def test_format_2_entries_of_the_previous_release_are_still_read(
    entry: Entry, payload: bytes
) -> None:
    decoded, decoded_payload = unpack_entry(pack_entry_v2(entry, payload, 1), codec_id=1)
    assert decoded_payload == payload
    assert (decoded.version, decoded.tags, decoded.tag_versions) == (
        entry.version,
        entry.tags,
        entry.tag_versions,
    )


def test_the_digest_is_what_redis_can_recompute() -> None:
    entry = Entry(None, stored_at=1.0, fresh_until=2.0, stale_until=3.0, version=7)
    blob = pack_entry(entry, b"[1]", codec_id=1)
    body, tail = blob[:-DIGEST_SIZE], blob[-DIGEST_SIZE:]
    assert tail.hex() == hashlib.sha1(body).hexdigest()[: 2 * DIGEST_SIZE]
    assert struct.unpack_from(">q", blob, VERSION_OFFSET) == (7,)


@given(entries, st.binary(min_size=1, max_size=32), st.data())
def test_any_truncation_or_bit_flip_is_detected(
    entry: Entry, payload: bytes, data: st.DataObject
) -> None:
    blob = pack_entry(entry, payload, codec_id=2)
    cut = data.draw(st.integers(0, len(blob) - 1))
    with pytest.raises(GarbledEntryError):
        unpack_entry(blob[:cut], codec_id=2)
    position = data.draw(st.integers(0, len(blob) - 1))
    bit = data.draw(st.integers(0, 7))
    flipped = bytearray(blob)
    flipped[position] ^= 1 << bit
    with pytest.raises(GarbledEntryError):
        unpack_entry(bytes(flipped), codec_id=2)


def test_foreign_format_and_wrong_codec_are_garbled() -> None:
    entry = Entry(None, stored_at=1.0, fresh_until=2.0, stale_until=3.0)
    blob = pack_entry(entry, b"{}", codec_id=1)
    with pytest.raises(GarbledEntryError, match="codec"):
        unpack_entry(blob, codec_id=2)
    with pytest.raises(GarbledEntryError, match="magic"):
        unpack_entry(b"\x80\x04\x95" + blob[3:], codec_id=1)  # a pickle header
    with pytest.raises(GarbledEntryError, match="version"):
        unpack_entry(blob[:2] + b"\x09" + blob[3:], codec_id=1)
    with pytest.raises(GarbledEntryError):
        unpack_entry(b"", codec_id=1)
