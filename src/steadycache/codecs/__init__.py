"""Value codecs. Data-only formats: JSON (standard library) and msgpack (extra ``msgpack``).

Pickle is deliberately absent: decoding a pickle runs code chosen by whoever can write the
cache, so a shared cache would become a remote-code-execution channel.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from steadycache.errors import ConfigurationError, GarbledEntryError, SerializationError


class Codec(Protocol):
    """Turns a value into bytes and back. ``decode`` raises ``GarbledEntryError``."""

    name: str
    codec_id: int

    def encode(self, value: Any) -> bytes: ...

    def decode(self, payload: bytes) -> Any: ...


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
            return self._encoder.encode(value).encode()
        except (TypeError, ValueError) as exc:
            raise SerializationError(
                f"value of type {type(value).__name__} is not JSON-serialisable: {exc}"
            ) from exc

    def decode(self, payload: bytes) -> Any:
        try:
            return self._decoder.decode(payload.decode())
        except (UnicodeDecodeError, ValueError) as exc:
            raise GarbledEntryError(f"JSON payload unreadable: {exc}") from exc


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
        return packed

    def decode(self, payload: bytes) -> Any:
        try:
            return self._msgpack.unpackb(payload, raw=False, strict_map_key=False)
        except Exception as exc:  # msgpack raises several unrelated types on bad input
            raise GarbledEntryError(f"msgpack payload unreadable: {exc}") from exc


def codec_for(name: str) -> Codec:
    """The codec registered under ``name`` (the policy validated the name already)."""
    if name == "json":
        return JsonCodec()
    if name == "msgpack":
        return MsgpackCodec()
    raise ConfigurationError("security", f"unknown codec {name!r}")
