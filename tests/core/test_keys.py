from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steadycache._core.keys import KeyBuilder, encode_part
from steadycache.errors import InvalidKeyError, MissingScopeError

parts = st.one_of(
    st.text(max_size=12), st.integers(), st.booleans(), st.none(), st.binary(max_size=8)
)
keys = st.one_of(parts, st.lists(parts, min_size=1, max_size=4).map(tuple))


def test_separator_inside_parts_cannot_collide() -> None:
    builder = KeyBuilder("ns")
    assert builder.build(("a:b", "c")) != builder.build(("a", "b:c"))
    assert builder.build(("a\\", "c")) != builder.build(("a", "\\c"))


def test_types_are_part_of_the_key() -> None:
    builder = KeyBuilder("ns")
    built = {builder.build(k) for k in (1, "1", True, None, "None", b"1", (1,), ("1", ""))}
    assert len(built) == 7  # (1,) is the same key as 1: a one-part tuple


@given(keys, keys)
def test_distinct_keys_never_share_a_stored_key(first: object, second: object) -> None:
    builder = KeyBuilder("ns")
    normal = [k if isinstance(k, tuple) else (k,) for k in (first, second)]
    if normal[0] != normal[1] or [type(p) for p in normal[0]] != [type(p) for p in normal[1]]:
        assert builder.build(first) != builder.build(second)
    else:
        assert builder.build(first) == builder.build(second)


@given(st.text(max_size=10), st.text(max_size=10), st.text(max_size=10))
def test_distinct_scope_values_never_share_a_key(key: str, user_a: str, user_b: str) -> None:
    for hashed in (False, True):
        builder = KeyBuilder("profile", dimensions=("user_id",), hash_keys=hashed, max_length=1024)
        first = builder.build(key, {"user_id": user_a})
        second = builder.build(key, {"user_id": user_b})
        assert (first == second) == (user_a == user_b)


def test_scope_and_key_parts_cannot_be_confused() -> None:
    builder = KeyBuilder("ns", dimensions=("tenant",))
    assert builder.build("b", {"tenant": "a"}) != builder.build(("a", "b"), {"tenant": ""})


def test_missing_scope_is_an_error_naming_the_dimension() -> None:
    builder = KeyBuilder("ns", dimensions=("tenant_id", "user_id"))
    with pytest.raises(MissingScopeError, match="user_id") as caught:
        builder.build("k", {"tenant_id": 1})
    assert caught.value.missing == ("user_id",)
    with pytest.raises(MissingScopeError):
        builder.build("k")


def test_undeclared_scope_is_an_error() -> None:
    with pytest.raises(InvalidKeyError, match="undeclared"):
        KeyBuilder("ns", dimensions=("a",)).build("k", {"a": 1, "b": 2})
    with pytest.raises(InvalidKeyError, match="declares no scope"):
        KeyBuilder("ns").build("k", {"a": 1})


def test_hashed_keys_hide_the_material() -> None:
    builder = KeyBuilder("users", dimensions=("email",), hash_keys=True)
    stored = builder.build("profile", {"email": "alice@example.com"})
    assert "alice" not in stored
    assert "example" not in stored
    assert stored.startswith("users:g0:#")
    # A secret changes the digest, so a leaked key list cannot be dictionary-attacked.
    other = KeyBuilder("users", dimensions=("email",), hash_keys=True, secret=b"s3cret")
    assert other.build("profile", {"email": "alice@example.com"}) != stored


def test_namespace_is_part_of_the_digest() -> None:
    a = KeyBuilder("a", hash_keys=True).build("k")
    b = KeyBuilder("b", hash_keys=True).build("k")
    assert a.split(":", 2)[2] != b.split(":", 2)[2]


def test_generation_changes_the_prefix() -> None:
    builder = KeyBuilder("ns")
    assert builder.build("k") == "ns:g0:sk"
    assert builder.with_generation(3).build("k") == "ns:g3:sk"


def test_max_key_length() -> None:
    builder = KeyBuilder("ns", max_length=40)
    with pytest.raises(InvalidKeyError, match="max_key_length=40"):
        builder.build("x" * 50)
    hashed = KeyBuilder("ns", max_length=40, hash_keys=True)
    assert len(hashed.build("x" * 5000)) <= 60


@pytest.mark.parametrize("bad", [float("nan"), object(), [1], {"a": 1}])
def test_unencodable_parts_are_refused(bad: object) -> None:
    with pytest.raises(InvalidKeyError, match="no canonical encoding"):
        encode_part(bad)


def test_empty_tuple_and_bad_namespace() -> None:
    with pytest.raises(InvalidKeyError):
        KeyBuilder("ns").build(())
    with pytest.raises(InvalidKeyError):
        KeyBuilder("bad name")


# --- floats, dates and datetimes --------------------------------------------------------------


def test_floats_share_a_key_exactly_when_they_are_equal() -> None:
    builder = KeyBuilder("ns")
    assert builder.build(1.5) == "ns:g0:f1.5"
    assert builder.build(0.1 + 0.2) != builder.build(0.3)  # different numbers, different keys
    assert builder.build(-0.0) == builder.build(0.0)  # equal numbers, one key
    assert builder.build(1.0) != builder.build(1)  # the type is part of the key
    assert builder.build(float("inf")) != builder.build(float("-inf"))
    assert builder.build(1e300) != builder.build(1e299)

    class Float64(float):  # as numpy.float64 is: repr() names the type
        def __repr__(self) -> str:
            return f"Float64({float(self)})"

    assert builder.build(Float64(1.5)) == builder.build(1.5)


def test_nan_is_refused_saying_why() -> None:
    with pytest.raises(InvalidKeyError, match="NaN equals nothing"):
        KeyBuilder("ns").build(("rate", float("nan")))


def test_dates_and_datetimes_have_one_readable_key_each() -> None:
    builder = KeyBuilder("ns")
    assert builder.build(date(2026, 5, 1)) == "ns:g0:d2026-05-01"
    assert builder.build(datetime(2026, 5, 1, 10, 30)) == "ns:g0:D2026-05-01T10\\c30\\c00"
    naive = datetime(2026, 5, 1, 10)
    keys = {
        builder.build(key)
        for key in (
            date(2026, 5, 1),
            naive,
            naive.replace(microsecond=1),
            naive.replace(tzinfo=UTC),
            naive.replace(tzinfo=timezone(timedelta(hours=2))),
            naive.replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=2))),  # same instant
        )
    }
    assert len(keys) == 6
    assert builder.build(naive.replace(tzinfo=UTC)) == builder.build(
        naive.replace(tzinfo=timezone(timedelta(0)))
    )


def test_zoneinfo_datetimes_carry_the_zone_name_and_which_repeated_hour() -> None:
    try:
        paris = ZoneInfo("Europe/Paris")
    except ZoneInfoNotFoundError:
        pytest.skip("no time zone database on this machine")
    builder = KeyBuilder("ns", max_length=1024)
    summer = datetime(2026, 7, 1, 12, tzinfo=paris)
    assert builder.build(summer).endswith("+02\\c00[Europe/Paris]")
    fixed = summer.replace(tzinfo=timezone(timedelta(hours=2)))
    assert builder.build(summer) != builder.build(fixed)  # same offset, other rules
    repeated = datetime(2026, 10, 25, 2, 30, tzinfo=paris)  # clocks go back at 03:00
    assert builder.build(repeated) != builder.build(repeated.replace(fold=1))


def test_datetimes_without_a_canonical_zone_or_exact_type_are_refused() -> None:
    class Fixed(tzinfo):  # as pytz's and dateutil's zones are: no name to key by
        def utcoffset(self, moment: datetime | None) -> timedelta:
            return timedelta(hours=1)

        def dst(self, moment: datetime | None) -> timedelta:
            return timedelta(0)

        def tzname(self, moment: datetime | None) -> str:
            return "CET"

    class Timestamp(datetime):  # as pandas' is: isoformat() would drop its nanoseconds
        pass

    builder = KeyBuilder("ns")
    with pytest.raises(InvalidKeyError, match="no canonical name"):
        builder.build(datetime(2026, 5, 1, tzinfo=Fixed()))
    with pytest.raises(InvalidKeyError, match="no canonical encoding"):
        builder.build(Timestamp(2026, 5, 1))
