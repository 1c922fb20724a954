"""Value codecs. Data-only formats: JSON (standard library) and msgpack (extra ``msgpack``).

Pickle is deliberately absent: decoding a pickle runs code chosen by whoever can write the
cache, so a shared cache would become a remote-code-execution channel.

Both codecs bound nesting at ``MAX_DEPTH`` (100) containers: ``encode`` refuses a deeper
value with ``SerializationError``, and ``decode`` treats a deeper payload (which another
process, with a higher recursion limit, could have written) as garbled, so decoding never
raises ``RecursionError`` at a caller, whatever its stack depth. The check is a byte count
(a payload with fewer container bytes than the bound cannot be deeper) and, only when that
count could exceed it, a walk of the value. ``decode`` raises only ``GarbledEntryError``.
"""

from __future__ import annotations

import json
from typing import Any, Final, Protocol

from steadycache.errors import ConfigurationError, GarbledEntryError, SerializationError

#: The deepest nesting of lists, dicts and tuples a value may have (``[[1]]`` is 2).
MAX_DEPTH: Final = 100


class Codec(Protocol):
    """Turns a value into bytes and back. ``decode`` raises ``GarbledEntryError``."""

    name: str
    codec_id: int

    def encode(self, value: Any) -> bytes: ...

    def decode(self, payload: bytes) -> Any: ...


def deeper_than(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` nests more than ``limit`` containers (iterative: no recursion)."""
    if not isinstance(value, dict | list | tuple):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        for child in children:
            if isinstance(child, dict | list | tuple):
                stack.append((child, depth + 1))
    return False


def _too_deep(error: str) -> SerializationError:
    return SerializationError(f"value nests deeper than {MAX_DEPTH} levels ({error})")


class JsonCodec:
    """Compact, canonical JSON (sorted keys): portable across languages and services."""

    name: str = "json"
    codec_id: int = 1

    def __init__(self) -> None:
        self._encoder = json.JSONEncoder(
            ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
        )
        self._decoder = json.JSONDecoder()

    def encode(self, value: Any) -> bytes:
        try:
            payload = self._encoder.encode(value).encode()
        except RecursionError as exc:
            raise _too_deep("too deep to encode") from exc
        except (TypeError, ValueError) as exc:
            raise SerializationError(
                f"value of type {type(value).__name__} is not JSON-serialisable: {exc}"
            ) from exc
        if _json_containers(payload) >= MAX_DEPTH and deeper_than(value):
            raise _too_deep(f"{_json_containers(payload)} containers")
        return payload

    def decode(self, payload: bytes) -> Any:
        try:
            value = self._decoder.decode(payload.decode())
        except Exception as exc:  # ValueError, UnicodeDecodeError, RecursionError, ...
            raise GarbledEntryError(f"JSON payload unreadable: {exc!r}"[:300]) from exc
        if _json_containers(payload) >= MAX_DEPTH and deeper_than(value):
            raise GarbledEntryError(f"JSON payload nests deeper than {MAX_DEPTH} levels")
        return value


def _json_containers(payload: bytes) -> int:
    # An upper bound on the containers (a bracket inside a string counts too).
    return payload.count(b"[") + payload.count(b"{")


# msgpack container type bytes: fixmap, fixarray, array 16/32, map 16/32. Every other byte
# value is deleted before counting, so the count is an upper bound on the containers.
_MSGPACK_NOT_CONTAINER: Final = bytes(
    b for b in range(256) if not (0x80 <= b <= 0x9F or 0xDC <= b <= 0xDF)
)
# The msgpack timestamp extension (type -1) decodes to msgpack.Timestamp whatever ext_hook
# says; steadycache never writes one, so a payload that holds one was not written by us.
_MSGPACK_TIMESTAMP_MARKERS: Final = (b"\xd6\xff", b"\xd7\xff", b"\xc7\x0c\xff")


class MsgpackCodec:
    """msgpack: smaller and faster than JSON; needs ``pip install 'steadycache[msgpack]'``."""

    name: str = "msgpack"
    codec_id: int = 2

    def __init__(self) -> None:
        try:
            import msgpack
        except ImportError as exc:
            raise ConfigurationError(
                "security", "codec 'msgpack' needs the extra: pip install 'steadycache[msgpack]'"
            ) from exc
        self._msgpack = msgpack

    def encode(self, value: Any) -> bytes:
        try:
            packed: bytes = self._msgpack.packb(value, use_bin_type=True, strict_types=False)
        except (TypeError, ValueError, OverflowError) as exc:
            raise SerializationError(
                f"value of type {type(value).__name__} is not msgpack-serialisable: {exc}"
            ) from exc
        if _msgpack_containers(packed) >= MAX_DEPTH and deeper_than(value):
            raise _too_deep(f"{_msgpack_containers(packed)} containers")
        return packed

    def decode(self, payload: bytes) -> Any:
        try:
            value = self._msgpack.unpackb(
                payload, raw=False, strict_map_key=False, ext_hook=_refuse_extension
            )
        except Exception as exc:  # msgpack raises several unrelated types on bad input
            raise GarbledEntryError(f"msgpack payload unreadable: {exc!r}"[:300]) from exc
        if _msgpack_containers(payload) >= MAX_DEPTH and deeper_than(value):
            raise GarbledEntryError(f"msgpack payload nests deeper than {MAX_DEPTH} levels")
        if any(marker in payload for marker in _MSGPACK_TIMESTAMP_MARKERS) and _holds(
            value, self._msgpack.Timestamp
        ):
            raise GarbledEntryError("msgpack payload holds a timestamp extension")
        return value


def _msgpack_containers(payload: bytes) -> int:
    return len(payload.translate(None, _MSGPACK_NOT_CONTAINER))


def _refuse_extension(code: int, data: bytes) -> Any:
    raise GarbledEntryError(f"msgpack extension type {code} is not a steadycache value")


def _holds(value: Any, kind: type) -> bool:
    """Whether ``value`` or anything inside it is a ``kind``."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, kind):
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def codec_for(name: str) -> Codec:
    """The codec registered under ``name`` (the policy validated the name already)."""
    if name == "json":
        return JsonCodec()
    if name == "msgpack":
        return MsgpackCodec()
    raise ConfigurationError("security", f"unknown codec {name!r}")
