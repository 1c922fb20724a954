from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steadycache.codecs import JsonCodec, MsgpackCodec, codec_for
from steadycache.errors import ConfigurationError, GarbledEntryError, SerializationError

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(max_size=16),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8) | st.integers(0, 100), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_json_round_trip(value: Any) -> None:
    codec = JsonCodec()
    assert codec.decode(codec.encode(value)) == value


@given(msgpack_values)
def test_msgpack_round_trip(value: Any) -> None:
    codec = MsgpackCodec()
    assert codec.decode(codec.encode(value)) == value


@pytest.mark.parametrize("codec", [JsonCodec(), MsgpackCodec()], ids=["json", "msgpack"])
def test_unserialisable_values_raise_a_clear_error(codec: Any) -> None:
    with pytest.raises(SerializationError, match="object"):
        codec.encode(object())


def test_json_refuses_nan() -> None:
    with pytest.raises(SerializationError):
        JsonCodec().encode(float("nan"))


@pytest.mark.parametrize("codec", [JsonCodec(), MsgpackCodec()], ids=["json", "msgpack"])
def test_garbage_decodes_to_garbled(codec: Any) -> None:
    with pytest.raises(GarbledEntryError):
        codec.decode(b"\xc1\xff{not")


def test_pickle_is_not_offered() -> None:
    with pytest.raises(ConfigurationError):
        codec_for("pickle")
