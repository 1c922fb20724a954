"""Fuzzing what crosses a trust boundary: envelopes, codecs and keys.

- Decoding (envelopes, JSON, msgpack) of any bytes raises ``GarbledEntryError`` or returns
  a value; never anything else (no ``RecursionError``, ``struct.error``, ``TypeError``...).
- Encoding any value returns bytes that decode again, or raises ``SerializationError``.
- Building a key from any parts returns valid Unicode within the length limit, or raises
  ``InvalidKeyError``/``MissingScopeError``; two different keys never build the same one.

Budgets: Hypothesis's default profile in ``make test``, the ``fuzz`` profile in ``make fuzz``.
"""

from __future__ import annotations

import contextlib
import struct
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from steadycache._core.entry import HEADER_SIZE, MAGIC, Entry, pack_entry, unpack_entry
from steadycache._core.keys import KeyBuilder, check_tags
from steadycache.codecs import MAX_DEPTH, JsonCodec, MsgpackCodec
from steadycache.errors import (
    GarbledEntryError,
    InvalidKeyError,
    MissingScopeError,
    SerializationError,
)
from steadycache.stampede.hot_keys import decode_snapshot, encode_snapshot
from steadycache.stores.memory import MemoryStore

CODECS = [JsonCodec(), MsgpackCodec()]

# Ints past str()'s 4,300-digit limit (made by map: Hypothesis cannot repr such a literal).
huge_ints = st.integers(-3, 3).map(lambda n: n * 10**4500 + 1)
# Text including lone surrogates, which valid Unicode strategies leave out.
any_text = st.text(alphabet=st.characters(), max_size=12) | st.builds(
    lambda head, code: head + chr(code), st.text(max_size=4), st.integers(0xD800, 0xDFFF)
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    huge_ints,
    st.floats(allow_nan=True, allow_infinity=True),
    any_text,
    st.binary(max_size=16),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.one_of(any_text, st.integers(), st.booleans()), inner, max_size=3),
        st.frozensets(st.integers(), max_size=3),
    ),
    max_leaves=20,
)


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


# --- envelopes ------------------------------------------------------------------------------


@given(st.binary(max_size=200), st.sampled_from([1, 2]))
def test_any_bytes_unpack_or_are_garbled(blob: bytes, codec_id: int) -> None:
    with contextlib.suppress(GarbledEntryError):
        unpack_entry(blob, codec_id)


@given(
    st.integers(0, 3),
    st.integers(0, 2),
    st.integers(0, 0xFFFF),
    st.binary(max_size=120),
)
def test_envelope_headers_that_look_right_unpack_or_are_garbled(
    format_version: int, codec_id: int, n_tags: int, rest: bytes
) -> None:
    # Valid magic, plausible format and codec, any tag count: the parser's deeper paths.
    head = struct.pack(
        ">2sBBddddqH", MAGIC, format_version, codec_id, 1.0, 2.0, 3.0, 0.0, 1, n_tags
    )
    assert len(head) == HEADER_SIZE
    with contextlib.suppress(GarbledEntryError):
        unpack_entry(head + rest, codec_id)


# --- codecs ---------------------------------------------------------------------------------


@given(st.binary(max_size=300), st.sampled_from(CODECS))
def test_decoding_any_bytes_returns_or_is_garbled(payload: bytes, codec: Any) -> None:
    with contextlib.suppress(GarbledEntryError):
        codec.decode(payload)


@given(st.integers(0, 3000), st.sampled_from(["[", '{"a":']), st.sampled_from(CODECS))
def test_deep_payloads_decode_within_the_bound_or_are_garbled(
    depth: int, opener: str, codec: Any
) -> None:
    if codec.name == "json":
        closer = "]" if opener == "[" else "}"
        payload = (opener * depth + "1" + closer * depth).encode()
    else:
        payload = b"\x91" * depth + b"\x01" if opener == "[" else b"\x81\xa1a" * depth + b"\x01"
    try:
        codec.decode(payload)
    except GarbledEntryError:
        assert depth > MAX_DEPTH
    else:
        assert depth <= MAX_DEPTH


@given(values, st.sampled_from(CODECS))
def test_encoding_any_value_gives_decodable_bytes_or_a_serialization_error(
    value: Any, codec: Any
) -> None:
    try:
        payload = codec.encode(value)
    except SerializationError:
        return
    codec.decode(payload)  # whatever we write, we can read


@given(st.integers(0, 1200), st.sampled_from(CODECS))
def test_encoding_deep_values_is_bounded(depth: int, codec: Any) -> None:
    try:
        codec.encode(nested(depth))
    except SerializationError:
        assert depth > MAX_DEPTH
    else:
        assert depth <= MAX_DEPTH


@given(values, st.sampled_from(CODECS))
def test_a_serialising_store_turns_any_stored_bytes_into_a_value_or_a_miss(
    value: Any, codec: Any
) -> None:
    store = MemoryStore(max_entries=10, serialize=codec, clock=lambda: 0.0)
    try:
        store.set("ns:g0:sk", Entry(value, stored_at=0.0, fresh_until=9.0, stale_until=9.0))
    except SerializationError:
        return
    store.get("ns:g0:sk")


@given(st.binary(min_size=1, max_size=60), st.sampled_from(CODECS))
def test_a_valid_envelope_around_any_payload_decodes_or_is_garbled(
    payload: bytes, codec: Any
) -> None:
    blob = pack_entry(Entry(None, stored_at=0, fresh_until=1, stale_until=2), payload, 1)
    _, body = unpack_entry(blob, 1)
    assert body == payload
    with contextlib.suppress(GarbledEntryError):
        codec.decode(body)


# --- keys -----------------------------------------------------------------------------------

key_parts = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers() | huge_ints,
        any_text,
        st.binary(max_size=8),
        st.floats(),
        st.lists(st.integers(), max_size=2),
    ),
    lambda inner: st.tuples(inner) | st.tuples(inner, inner),
    max_leaves=12,
)


def canonical(part: Any) -> Any:
    """What a key part means: equal meanings must build equal keys, and only those."""
    if isinstance(part, tuple):
        return ("tuple", tuple(canonical(item) for item in part))
    return (type(part).__name__, part)


def meaning(key: Any) -> Any:
    # A lone part and a one-part tuple are the same key, by design.
    return tuple(canonical(part) for part in key) if isinstance(key, tuple) else (canonical(key),)


def build(builder: KeyBuilder, key: Any, scope: dict[str, Any] | None = None) -> str | None:
    try:
        stored = builder.build(key, scope)
    except (InvalidKeyError, MissingScopeError):
        return None
    stored.encode()  # always valid Unicode: any store can take it
    return stored


@given(key_parts, st.booleans())
def test_any_key_builds_valid_text_within_the_limit_or_is_refused(key: Any, hashed: bool) -> None:
    builder = KeyBuilder("ns", hash_keys=hashed, max_length=250)
    stored = build(builder, key)
    if stored is not None:
        assert len(stored) <= 250


@given(key_parts, key_parts, st.booleans())
def test_different_keys_never_build_the_same_stored_key(
    first: Any, second: Any, hashed: bool
) -> None:
    builder = KeyBuilder("ns", hash_keys=hashed, max_length=1024)
    a, b = build(builder, first), build(builder, second)
    assume(a is not None and b is not None)
    assert (a == b) == (meaning(first) == meaning(second))


@given(key_parts, any_text, any_text)
def test_scope_values_never_blur_into_key_parts(key: Any, tenant: str, other: str) -> None:
    builder = KeyBuilder("ns", dimensions=("tenant",), max_length=1024)
    a = build(builder, key, {"tenant": tenant})
    b = build(builder, key, {"tenant": other})
    assume(a is not None and b is not None)
    assert (a == b) == (tenant == other)


@given(st.lists(st.one_of(any_text, st.integers(), st.none()), max_size=5) | any_text)
def test_any_tags_are_checked_or_refused(tags: Any) -> None:
    try:
        checked = check_tags(tags)
    except InvalidKeyError:
        return
    for tag in checked:
        assert isinstance(tag, str)
        assert tag
        tag.encode()


# --- hot-key snapshots ------------------------------------------------------------------------


@given(st.text(max_size=200) | st.just("[" * 5000))
def test_any_snapshot_text_decodes_to_pairs_or_nothing(text: str) -> None:
    pairs = decode_snapshot(text, "ns")
    assert isinstance(pairs, list)


@given(key_parts.filter(lambda key: build(KeyBuilder("ns", max_length=1024), key) is not None))
def test_snapshotted_keys_come_back_as_the_same_stored_key(key: Any) -> None:
    builder = KeyBuilder("ns", max_length=1024)
    ((restored, scope),) = decode_snapshot(encode_snapshot("ns", [(key, None, 1)]), "ns")
    assert scope is None
    assert builder.build(restored) == builder.build(key)
