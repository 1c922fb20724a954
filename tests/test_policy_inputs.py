"""Every decision refuses a wrong value or a wrong *type* with ``ConfigurationError``.

A string where a number belongs, ``"no"`` where a flag belongs, ``1e300`` seconds: each
is a configuration mistake, named like any other, never a bare ``TypeError`` from a
comparison deep inside a constructor, and never silently read as something else.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steadycache import ConfigurationError, Policy, Sensitivity, SharedTiers, Stampede
from steadycache.policy import (
    EarlyRefresh,
    Eviction,
    HotKeyWarmUp,
    Invalidation,
    LoaderTimeouts,
    Observability,
    OriginLimit,
    RefreshAhead,
    Security,
    SingleFlight,
    Sizing,
    StaleIfError,
    StaleWhileRevalidate,
    Ttl,
    WriteBehind,
    WriteThrough,
)

WRONG: list[tuple[str, Callable[[], object]]] = [
    ("Ttl jitter as text", lambda: Ttl(60, jitter="0.1")),  # type: ignore[arg-type]
    ("Ttl seconds as text", lambda: Ttl("60")),  # type: ignore[arg-type]
    ("Ttl of 1e300 s", lambda: Ttl(1e300)),
    ("max_key_length as text", lambda: Security(max_key_length="250")),  # type: ignore[arg-type]
    ("hash_keys='no'", lambda: Security(hash_keys="no")),  # type: ignore[arg-type]
    ("codec as a list", lambda: Security(codec=["json"])),  # type: ignore[arg-type]
    ("leases='no'", lambda: SharedTiers(leases="no")),  # type: ignore[arg-type]
    ("wait_replicas as text", lambda: SharedTiers(wait_replicas="1")),  # type: ignore[arg-type]
    ("on_store_error as a list", lambda: SharedTiers(on_store_error=[])),  # type: ignore[arg-type]
    ("EarlyRefresh beta as text", lambda: EarlyRefresh(beta="1")),  # type: ignore[arg-type]
    ("EarlyRefresh window None", lambda: EarlyRefresh(window=None)),  # type: ignore[arg-type]
    ("RefreshAhead at as text", lambda: RefreshAhead(at="0.5")),  # type: ignore[arg-type]
    ("HotKeyWarmUp rate as text", lambda: HotKeyWarmUp(rate="5")),  # type: ignore[arg-type]
    ("HotKeyWarmUp target as text", lambda: HotKeyWarmUp(target="0.9")),  # type: ignore[arg-type]
    ("HotKeyWarmUp top_k float", lambda: HotKeyWarmUp(top_k=1.5)),  # type: ignore[arg-type]
    ("snapshot_path as int", lambda: HotKeyWarmUp(snapshot_path=5)),  # type: ignore[arg-type]
    ("max_entries as text", lambda: Eviction(max_entries="10")),  # type: ignore[arg-type]
    ("eviction policy as int", lambda: Eviction(policy=5)),  # type: ignore[arg-type]
    ("accept noeviction 'yes'", lambda: Eviction(accept_redis_noeviction="yes")),  # type: ignore[arg-type]
    ("max_concurrent as text", lambda: OriginLimit(max_concurrent="8")),  # type: ignore[arg-type]
    ("max_value_bytes float", lambda: Sizing(max_value_bytes=1.5)),  # type: ignore[arg-type]
    ("sqlite_path as int", lambda: WriteBehind(sqlite_path=5)),  # type: ignore[arg-type]
    ("accept_loss as int", lambda: WriteBehind(journal="redis", accept_loss=5)),  # type: ignore[arg-type]
    ("on_write as a list", lambda: WriteThrough(on_write=["update"])),  # type: ignore[arg-type]
    ("owner as int", lambda: Invalidation(owner=5)),  # type: ignore[arg-type]
    (
        "max_staleness as text",
        lambda: Sensitivity.transactional(max_staleness="10", acknowledged_by="x"),  # type: ignore[arg-type]
    ),
    (
        "acknowledged_by as int",
        lambda: Sensitivity.transactional(max_staleness=10, acknowledged_by=5),  # type: ignore[arg-type]
    ),
    ("wait_timeout of 1e300 s", lambda: SingleFlight(wait_timeout=1e300)),
    ("LoaderTimeouts hard as text", lambda: LoaderTimeouts(hard="1")),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("what", "make"), WRONG, ids=[what for what, _ in WRONG])
def test_a_wrong_type_or_value_is_a_configuration_error(
    what: str, make: Callable[[], object]
) -> None:
    with pytest.raises(ConfigurationError):
        make()


# Every decision class and a valid keyword set for it; the property below replaces one field
# at a time with anything and expects either a valid object or a ConfigurationError.
DECISION_CLASSES: list[tuple[type, dict[str, Any]]] = [
    (Ttl, {"seconds": 60}),
    (Security, {}),
    (SharedTiers, {}),
    (EarlyRefresh, {}),
    (RefreshAhead, {}),
    (HotKeyWarmUp, {}),
    (Eviction, {}),
    (OriginLimit, {}),
    (Sizing, {}),
    (WriteBehind, {"sqlite_path": "/tmp/x.db"}),
    (WriteThrough, {}),
    (Invalidation, {}),
    (SingleFlight, {}),
    (LoaderTimeouts, {}),
    (Observability, {}),
    (StaleIfError, {"seconds": 10}),
    (StaleWhileRevalidate, {"seconds": 10}),
]

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.binary(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


def _fields(kind: type, base: dict[str, Any]) -> list[str]:
    if dataclasses.is_dataclass(kind):
        names = [f.name for f in dataclasses.fields(kind) if f.init]
        return names or list(base)
    return list(base)


@given(st.data())
def test_any_value_in_any_field_is_accepted_or_a_configuration_error(
    data: st.DataObject,
) -> None:
    kind, base = data.draw(st.sampled_from(DECISION_CLASSES))
    fields = _fields(kind, base) or ["seconds"]
    field = data.draw(st.sampled_from(fields))
    value = data.draw(anything)
    # Refused with the decision named is what a bad value must get; nothing else may escape.
    with contextlib.suppress(ConfigurationError):
        kind(**(base | {field: value}))


def test_a_wait_shorter_than_two_leases_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="twice"):
        Policy(consistency=SharedTiers(lease_ttl=5))  # SingleFlight waits 5 s by default
    Policy(consistency=SharedTiers(lease_ttl=2.5))  # exactly two leases: fine
    with pytest.raises(ConfigurationError, match="twice"):
        Policy(
            consistency=SharedTiers(lease_ttl=1),
            stampede=Stampede(single_flight=SingleFlight(wait_timeout=1.5)),
        )


def test_fleet_leases_need_single_flight_in_the_process_too() -> None:
    with pytest.raises(ConfigurationError, match="leases"):
        Policy(consistency=SharedTiers(), stampede=Stampede(single_flight=None))
    Policy(consistency=SharedTiers(leases=False), stampede=Stampede(single_flight=None))
