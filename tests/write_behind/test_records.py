"""The journal text of a write round-trips exactly: tuples stay tuples, bytes stay bytes."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steadycache import write_behind
from steadycache.errors import GarbledEntryError, SerializationError, UsageError
from steadycache.write_behind import (
    WriteRecord,
    decode_record,
    decode_value,
    encode_record,
    encode_value,
    record_identity,
)
from steadycache.write_behind.records import new_record

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(),
    st.binary(),
    st.floats(allow_nan=False, allow_infinity=False),
)
keys = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(), st.binary(), st.tuples(scalars, scalars)
)
# Dict keys include the tags themselves, so escaping is exercised.
dict_keys = st.one_of(st.text(), st.sampled_from(["~t", "~b", "~d", "~x"]))
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(dict_keys, children, max_size=4),
    ),
    max_leaves=20,
)
scopes = st.one_of(st.none(), st.dictionaries(st.text(min_size=1), scalars, min_size=1))


def same(left: Any, right: Any) -> bool:
    """Equal *and* of the same types all the way down (1 == True == 1.0 in Python)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, list | tuple):
        return len(left) == len(right) and all(map(same, left, right))
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same(left[k], right[k]) for k in left)
    return bool(left == right)


@given(values)
def test_values_round_trip_exactly(value: Any) -> None:
    assert same(decode_value(encode_value(value)), value)


@given(
    namespace=st.text(min_size=1),
    key=keys,
    scope=scopes,
    value=values,
    op=st.sampled_from(["set", "delete"]),
    enqueued_at=st.floats(min_value=0, max_value=4e9),
    attempts=st.integers(min_value=1, max_value=100),
)
def test_records_round_trip_exactly(
    namespace: str,
    key: Any,
    scope: dict[str, Any] | None,
    value: Any,
    op: str,
    enqueued_at: float,
    attempts: int,
) -> None:
    record = new_record(
        namespace,
        key,
        scope,
        None if op == "delete" else value,
        op=op,
        idempotency_key="abc",
        enqueued_at=enqueued_at,
    )
    decoded = decode_record(
        encode_record(record), sequence="00000000000000000007", attempts=attempts
    )
    assert decoded.sequence == "00000000000000000007"
    assert decoded.attempts == attempts
    assert same(decoded.key, record.key)
    assert same(decoded.value, record.value)
    assert same(decoded.scope, record.scope)
    assert (decoded.namespace, decoded.op, decoded.idempotency_key, decoded.enqueued_at) == (
        namespace,
        op,
        "abc",
        enqueued_at,
    )
    assert record_identity(decoded) == record_identity(record)


def record_for(key: Any, scope: dict[str, Any] | None = None) -> WriteRecord:
    return new_record("ns", key, scope, 1, op="set", idempotency_key="x", enqueued_at=0.0)


def test_tuple_list_and_bytes_keys_are_distinct_identities() -> None:
    identities = {
        record_identity(record_for(key))
        for key in [(1, "a"), [1, "a"], ["1", "a"], ("1", "a"), b"x", "x", "eA==", 1, True, 1.0]
    }
    assert len(identities) == 10


def test_scope_is_part_of_the_identity_and_empty_scope_is_none() -> None:
    assert record_identity(record_for("k", {"user": 1})) != record_identity(record_for("k"))
    assert record_identity(record_for("k", {})) == record_identity(record_for("k"))
    assert record_identity(record_for("k", {"a": 1, "b": 2})) == record_identity(
        record_for("k", {"b": 2, "a": 1})
    )


def test_a_users_tag_shaped_dict_stays_a_dict() -> None:
    shaped: list[dict[str, Any]] = [{"~t": [1, 2]}, {"~b": "eA=="}, {"~d": []}]
    for value in shaped:
        decoded = decode_value(encode_value(value))
        assert decoded == value
        assert isinstance(decoded, dict)
    assert decode_value(encode_value(((1, b"\x00"),))) == ((1, b"\x00"),)


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, {1: "x"}, {"a"}, object(), bytearray(b"x"), [{"ok": {2: 3}}]]
)
def test_what_cannot_round_trip_is_refused_before_writing(value: Any) -> None:
    with pytest.raises(SerializationError):
        encode_value(value)


def test_bad_operations_are_refused() -> None:
    with pytest.raises(UsageError):
        new_record("ns", "k", None, 1, op="upsert", idempotency_key="x", enqueued_at=0.0)
    with pytest.raises(UsageError):
        new_record("ns", "k", None, 1, op="delete", idempotency_key="x", enqueued_at=0.0)
    with pytest.raises(UsageError):
        new_record("", "k", None, 1, op="set", idempotency_key="x", enqueued_at=0.0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        '{"v": 2}',
        '{"v": 1, "namespace": "n"}',
        '{"v":1,"namespace":"n","key":{"~b":"!!"},"scope":null,"value":1,"op":"set",'
        '"idempotency_key":"x","enqueued_at":0}',
        '{"v":1,"namespace":"n","key":"k","scope":null,"value":1,"op":"merge",'
        '"idempotency_key":"x","enqueued_at":0}',
        '{"v":1,"namespace":"n","key":"k","scope":[1],"value":1,"op":"set",'
        '"idempotency_key":"x","enqueued_at":0}',
    ],
)
def test_garbled_text_is_a_garbled_entry_error(text: str) -> None:
    with pytest.raises(GarbledEntryError):
        decode_record(text, sequence="1", attempts=1)


def test_public_names() -> None:
    for name in write_behind.__all__:
        assert getattr(write_behind, name) is not None
    assert write_behind.RedisStreamJournal.__name__ == "RedisStreamJournal"


def test_package_imports_without_redis() -> None:
    code = textwrap.dedent(
        """
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("redis", "psycopg"):
                    raise ImportError(f"blocked {name}")
                return None

        sys.meta_path.insert(0, Block())
        import steadycache.write_behind as wb
        assert "redis" not in sys.modules
        try:
            wb.RedisStreamJournal
        except ImportError as exc:
            assert "steadycache[redis]" in str(exc), exc
        else:
            raise AssertionError("RedisStreamJournal imported without redis")
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
