"""The cache entry and its binary envelope.

Envelope layout (big-endian), format version 3::

    magic      2 bytes   b"SC"
    format     1 byte    3
    codec id   1 byte    1 = json, 2 = msgpack
    stored_at  f64       wall-clock seconds
    fresh_until f64      soft expiry: after it the entry is stale
    stale_until f64      hard expiry: after it the entry is never served
    load_cost  f64       seconds the loader took (drives early refresh)
    version    i64       monotonically increasing write version (0 = unversioned)
    n_tags     u16       then n_tags times: u16 length + UTF-8 tag + u64 tag version
    payload    ...       the value encoded by the codec
    digest     8 bytes   the first 8 bytes of SHA-1 over everything before it

A tag's version is the tag's invalidation counter when the value was read from the source:
an entry whose tag has since been invalidated (its counter moved on) is never served.

The digest is SHA-1, not a CRC, because Redis can compute it inside a script
(``redis.sha1hex``): the versioned-write script verifies a stored entry before letting its
version refuse a write, so a flipped bit or a foreign value can never pin a key. It guards
against corruption, not against an attacker who can write the cache.

Format 2 (the same header with a CRC32 between the tags and the payload) is still read, so
entries written by the previous release are served until they expire.

A reader that meets another magic, an unknown format, a wrong codec, a bad digest or a
short buffer raises ``GarbledEntryError``; the facades turn that into a miss plus a counter.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from typing import Any, Final

from steadycache.errors import GarbledEntryError

MAGIC: Final = b"SC"
FORMAT_VERSION: Final = 3
_FORMAT_CRC32: Final = 2  # the previous format, still read
_HEADER = struct.Struct(">2sBBddddqH")
_TAG_LENGTH = struct.Struct(">H")
_TAG_VERSION = struct.Struct(">Q")
_CRC = struct.Struct(">I")
DIGEST_SIZE: Final = 8
HEADER_SIZE: Final = _HEADER.size
#: Byte offset of the write version in the envelope (the versioned-write script reads it).
VERSION_OFFSET: Final = 36
#: The bounds the envelope can carry (its length fields are 16 bits).
MAX_TAGS: Final = 0xFFFF
MAX_TAG_BYTES: Final = 0xFFFF


def digest(data: bytes) -> bytes:
    """The envelope digest of ``data`` (what the Redis script recomputes)."""
    return hashlib.sha1(data, usedforsecurity=False).digest()[:DIGEST_SIZE]


class Entry:
    """A value plus the metadata every freshness decision needs. Immutable by convention."""

    __slots__ = (
        "fresh_until",
        "load_cost",
        "size",
        "stale_until",
        "stored_at",
        "tag_versions",
        "tags",
        "value",
        "version",
    )

    def __init__(
        self,
        value: Any,
        *,
        stored_at: float,
        fresh_until: float,
        stale_until: float,
        load_cost: float = 0.0,
        version: int = 0,
        tags: tuple[str, ...] = (),
        tag_versions: tuple[int, ...] | None = None,
        size: int = 0,
    ) -> None:
        self.value = value
        self.stored_at = stored_at
        self.fresh_until = fresh_until
        self.stale_until = stale_until
        self.load_cost = load_cost
        self.version = version
        self.tags = tags
        #: Each tag's invalidation counter when the value was read (0: never invalidated).
        self.tag_versions = tag_versions if tag_versions is not None else (0,) * len(tags)
        #: Encoded size in bytes (what the entry costs in a byte-bounded store).
        self.size = size

    def __repr__(self) -> str:
        return (
            f"Entry(value={self.value!r}, stored_at={self.stored_at}, "
            f"fresh_until={self.fresh_until}, stale_until={self.stale_until}, "
            f"load_cost={self.load_cost}, version={self.version}, tags={self.tags})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Entry):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]


def pack_entry(entry: Entry, payload: bytes, codec_id: int) -> bytes:
    """The envelope for ``entry`` whose value the codec already encoded as ``payload``."""
    head = _pack_head(entry, codec_id, FORMAT_VERSION) + payload
    return head + digest(head)


def _pack_head(entry: Entry, codec_id: int, format_version: int) -> bytes:
    parts = [
        _HEADER.pack(
            MAGIC,
            format_version,
            codec_id,
            entry.stored_at,
            entry.fresh_until,
            entry.stale_until,
            entry.load_cost,
            entry.version,
            len(entry.tags),
        )
    ]
    for tag, tag_version in zip(entry.tags, entry.tag_versions, strict=True):
        encoded = tag.encode()
        parts.append(_TAG_LENGTH.pack(len(encoded)))
        parts.append(encoded)
        parts.append(_TAG_VERSION.pack(tag_version))
    return b"".join(parts)


def unpack_entry(blob: bytes, codec_id: int) -> tuple[Entry, bytes]:
    """Split an envelope into its entry (value not yet decoded) and the payload bytes.

    Raises only ``GarbledEntryError``, whatever the bytes are.
    """
    try:
        (
            magic,
            version,
            found_codec,
            stored_at,
            fresh_until,
            stale_until,
            load_cost,
            write_version,
            n_tags,
        ) = _HEADER.unpack_from(blob, 0)
    except (struct.error, TypeError) as exc:
        raise GarbledEntryError(f"entry too short for its header ({len(blob)} bytes)") from exc
    if magic != MAGIC:
        raise GarbledEntryError(f"not a steadycache entry (magic {magic!r})")
    if version not in (FORMAT_VERSION, _FORMAT_CRC32):
        raise GarbledEntryError(f"unknown entry format version {version}")
    if found_codec != codec_id:
        raise GarbledEntryError(f"entry written with codec id {found_codec}, expected {codec_id}")
    # Verified before anything else is read: no field of a corrupt entry is trusted.
    if version == FORMAT_VERSION and (
        len(blob) < _HEADER.size + DIGEST_SIZE or digest(blob[:-DIGEST_SIZE]) != blob[-DIGEST_SIZE:]
    ):
        raise GarbledEntryError("entry digest mismatch (truncated or modified)")
    offset = _HEADER.size
    tags: list[str] = []
    tag_versions: list[int] = []
    try:
        for _ in range(n_tags):
            (length,) = _TAG_LENGTH.unpack_from(blob, offset)
            offset += _TAG_LENGTH.size
            raw_tag = blob[offset : offset + length]
            if len(raw_tag) != length:
                raise GarbledEntryError("entry truncated inside its tags")
            tags.append(raw_tag.decode())
            offset += length
            (tag_version,) = _TAG_VERSION.unpack_from(blob, offset)
            tag_versions.append(tag_version)
            offset += _TAG_VERSION.size
        if version == FORMAT_VERSION:
            if offset > len(blob) - DIGEST_SIZE:
                raise GarbledEntryError("entry truncated inside its tags")
            payload = blob[offset:-DIGEST_SIZE]
        else:
            (checksum,) = _CRC.unpack_from(blob, offset)
            payload = blob[offset + _CRC.size :]
            if zlib.crc32(payload, zlib.crc32(blob[:offset])) != checksum:
                raise GarbledEntryError("entry checksum mismatch (truncated or modified)")
    except (struct.error, UnicodeDecodeError) as exc:
        raise GarbledEntryError(f"entry header unreadable: {exc}") from exc
    entry = Entry(
        None,
        stored_at=stored_at,
        fresh_until=fresh_until,
        stale_until=stale_until,
        load_cost=load_cost,
        version=write_version,
        tags=tuple(tags),
        tag_versions=tuple(tag_versions),
        size=len(blob),
    )
    return entry, payload


def pack_entry_v2(entry: Entry, payload: bytes, codec_id: int) -> bytes:
    """A format-2 envelope (CRC32), as the previous release wrote: for compatibility tests."""
    head = _pack_head(entry, codec_id, _FORMAT_CRC32)
    checksum = zlib.crc32(payload, zlib.crc32(head))
    return head + _CRC.pack(checksum) + payload
