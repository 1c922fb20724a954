"""One acknowledged write as the journal keeps it, and its exact JSON form.

JSON is the journal format because both journals store text and an operator must be able to
read a dead letter. Plain JSON would blur types the cache keeps apart (a tuple key ``(1, "a")``
and a list ``[1, "a"]``, or ``b"x"`` and ``"eA=="``), so those are tagged:

- a tuple is ``{"~t": [...]}``, bytes are ``{"~b": "<base64>"}``;
- a dict whose only key is one of those tags is written ``{"~d": [[key, value], ...]}`` so a
  user's own ``{"~t": ...}`` never decodes as a tuple.

Anything else that JSON cannot hold exactly (non-str dict keys, NaN, sets, objects) is refused
with ``SerializationError`` before anything is written.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from steadycache.errors import GarbledEntryError, SerializationError, UsageError

__all__ = [
    "OPERATIONS",
    "WriteRecord",
    "decode_record",
    "decode_value",
    "encode_record",
    "encode_value",
    "new_record",
    "record_identity",
]

FORMAT_VERSION: Final = 1
OPERATIONS: Final = ("set", "delete")

_TUPLE: Final = "~t"
_BYTES: Final = "~b"
_DICT: Final = "~d"
_TAGS: Final = frozenset({_TUPLE, _BYTES, _DICT})


@dataclass(frozen=True, slots=True)
class WriteRecord:
    """An acknowledged write waiting in the journal, as one delivery hands it to the writer."""

    namespace: str
    #: The user's key: str/int/bool/None/bytes or a tuple of those.
    key: Any
    scope: Mapping[str, Any] | None
    #: JSON-able; None for a delete.
    value: Any
    #: Unique per acknowledged write (made at append); the same on every redelivery.
    idempotency_key: str
    #: Journal position, fixed-width digits: a later append of the same journal compares
    #: greater as a string. Writers use it for "newer wins".
    sequence: str
    #: Wall-clock seconds at append.
    enqueued_at: float
    #: Deliveries so far, this one included.
    attempts: int
    op: str = "set"
    #: This delivery took the entry over from a flusher whose lease lapsed (it died or hung).
    recovered: bool = False
    #: A newer write of the same key was already applied: acknowledge, never apply.
    superseded: bool = False


def new_record(
    namespace: str,
    key: Any,
    scope: Mapping[str, Any] | None,
    value: Any,
    *,
    op: str,
    idempotency_key: str,
    enqueued_at: float,
) -> WriteRecord:
    """A record not yet journalled (no sequence, no delivery), checked and normalised."""
    if not isinstance(namespace, str) or not namespace:
        raise UsageError(f"write-behind namespace must be a non-empty str, got {namespace!r}")
    if op not in OPERATIONS:
        raise UsageError(f"write-behind op must be one of {OPERATIONS}, got {op!r}")
    if op == "delete" and value is not None:
        raise UsageError("a write-behind delete carries no value (pass value=None)")
    return WriteRecord(
        namespace=namespace,
        key=key,
        # An empty scope and no scope are the same key: one spelling, so they coalesce.
        scope=dict(scope) if scope else None,
        value=value,
        idempotency_key=idempotency_key,
        sequence="",
        enqueued_at=enqueued_at,
        attempts=0,
        op=op,
    )


def record_identity(record: WriteRecord) -> str:
    """What coalescing groups by: one digest per (namespace, key, scope)."""
    return identity_of(record.namespace, record.key, record.scope)


def identity_of(namespace: str, key: Any, scope: Mapping[str, Any] | None) -> str:
    canonical = json.dumps(
        [namespace, _to_json(key), _to_json(dict(scope)) if scope else None],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def encode_value(value: Any) -> str:
    """Tagged JSON text of ``value``; ``SerializationError`` if it cannot round-trip exactly."""
    return _dumps(_to_json(value))


def decode_value(text: str) -> Any:
    """The inverse of :func:`encode_value`; ``GarbledEntryError`` on anything else."""
    try:
        return _from_json(json.loads(text))
    except (ValueError, TypeError, KeyError, binascii.Error, RecursionError) as exc:
        raise GarbledEntryError(f"not a tagged JSON value: {exc}") from exc


def encode_record(record: WriteRecord) -> str:
    """The journal text of ``record``.

    ``sequence``, ``attempts``, ``recovered`` and ``superseded`` describe a delivery, not the
    write, so they are not part of the text: the journal supplies them at decode time.
    """
    if record.op not in OPERATIONS:
        raise SerializationError(f"write-behind op must be one of {OPERATIONS}, got {record.op!r}")
    return _dumps(
        {
            "v": FORMAT_VERSION,
            "namespace": record.namespace,
            "key": _to_json(record.key),
            "scope": _to_json(dict(record.scope)) if record.scope else None,
            "value": _to_json(record.value),
            "op": record.op,
            "idempotency_key": record.idempotency_key,
            "enqueued_at": record.enqueued_at,
        }
    )


def decode_record(
    text: str | bytes,
    *,
    sequence: str,
    attempts: int,
    recovered: bool = False,
    superseded: bool = False,
) -> WriteRecord:
    """Rebuild a record from its journal text; ``GarbledEntryError`` if it is not one.

    A record of another format version is garbled to this code: the flusher leaves it in the
    journal (logged, counted) for a flusher that can read it rather than guessing.
    """
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict) or raw.get("v") != FORMAT_VERSION:
            raise ValueError(f"format version {raw.get('v') if isinstance(raw, dict) else '?'}")
        scope = _from_json(raw["scope"])
        if scope is not None and not isinstance(scope, dict):
            raise ValueError("scope is not an object")
        record = WriteRecord(
            namespace=_expect(raw["namespace"], str),
            key=_from_json(raw["key"]),
            scope=scope,
            value=_from_json(raw["value"]),
            idempotency_key=_expect(raw["idempotency_key"], str),
            sequence=sequence,
            enqueued_at=float(_expect(raw["enqueued_at"], int | float)),
            attempts=attempts,
            op=_expect(raw["op"], str),
            recovered=recovered,
            superseded=superseded,
        )
    except (ValueError, TypeError, KeyError, binascii.Error, RecursionError) as exc:
        raise GarbledEntryError(f"not a write-behind journal record: {exc}") from exc
    if record.op not in OPERATIONS:
        raise GarbledEntryError(f"unknown write-behind op {record.op!r}")
    return record


# --- tagged JSON -----------------------------------------------------------------------------


def _dumps(tree: Any) -> str:
    # allow_nan=False: NaN is not JSON, and a journal entry must be readable by any JSON parser.
    return json.dumps(tree, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _to_json(value: Any) -> Any:
    try:
        return _tag(value)
    except RecursionError as exc:
        raise SerializationError("value is nested too deeply for the journal") from exc


def _tag(value: Any) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)  # an IntEnum member journals as its number
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SerializationError(f"{value!r} cannot be journalled: JSON has no NaN/infinity")
        return value
    if isinstance(value, tuple):
        return {_TUPLE: [_tag(item) for item in value]}
    if isinstance(value, bytes):
        return {_BYTES: base64.b64encode(value).decode("ascii")}
    if isinstance(value, list):
        return [_tag(item) for item in value]
    if isinstance(value, Mapping):
        for name in value:
            if not isinstance(name, str):
                raise SerializationError(
                    f"dict key {name!r} is not a str: JSON would turn it into one"
                )
        if len(value) == 1 and next(iter(value)) in _TAGS:
            return {_DICT: [[name, _tag(item)] for name, item in value.items()]}
        return {name: _tag(item) for name, item in value.items()}
    raise SerializationError(
        f"{type(value).__name__} cannot be journalled exactly (JSON values, tuples and bytes can)"
    )


def _from_json(tree: Any) -> Any:
    if isinstance(tree, list):
        return [_from_json(item) for item in tree]
    if not isinstance(tree, dict):
        return tree
    if len(tree) == 1:
        ((tag, body),) = tree.items()
        if tag == _TUPLE:
            return tuple(_from_json(item) for item in _expect(body, list))
        if tag == _BYTES:
            return base64.b64decode(_expect(body, str), validate=True)
        if tag == _DICT:
            return {_expect(name, str): _from_json(item) for name, item in _expect(body, list)}
    return {name: _from_json(item) for name, item in tree.items()}


def _expect(value: Any, kind: Any) -> Any:
    if not isinstance(value, kind):
        raise TypeError(f"expected {kind}, got {type(value).__name__}")
    return value
