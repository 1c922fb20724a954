"""Canonical, injective key building: namespace, generation, scope values, key parts.

A stored key looks like ``users:g0:s42:itenant`` (readable) or ``users:g0:#3f1a...``
(hashed). Each part is a one-letter type tag followed by the part's text, with ``\\`` and
``:`` escaped, so ``("a:b", "c")``, ``("a", "b:c")``, ``(1,)`` and ``("1",)`` all differ.
Scope values come first, in the order the namespace declared its dimensions; the number of
scope dimensions is fixed per namespace, so scope and key parts cannot be confused either.

What a key part may be (anything else raises ``InvalidKeyError`` before any I/O):

- ``str``: valid Unicode text; a lone surrogate (which ``json.loads`` of request data can
  produce) cannot be encoded for any store and is refused;
- ``int`` of any size (beyond about 4,000 digits in hexadecimal, so the key does not
  depend on ``sys.set_int_max_str_digits``), ``bool``, ``None``, ``bytes``;
- ``float``, written as its shortest round-trip ``repr`` (``f0.1``), so two floats share a
  key exactly when they are equal: ``0.1 + 0.2`` and ``0.3`` differ, ``-0.0`` is ``0.0``,
  and ``1.0`` is not ``1`` (the type is part of the key, as for ``"1"``). NaN is refused:
  it equals nothing, not even itself, so no later call could find its entry;
- ``datetime.date`` (``d2024-05-01``) and ``datetime.datetime`` (ISO 8601,
  ``D2024-05-01T10\\c30\\c00``): a naive one as it reads; an aware one with its UTC offset,
  plus the zone's name for a ``zoneinfo.ZoneInfo`` (``...+02\\c00[Europe/Paris]``), so the
  same instant in two zones is two keys. An aware one with another kind of ``tzinfo``
  (pytz, dateutil) is refused, having no canonical name; so are subclasses (a pandas
  ``Timestamp`` would lose its nanoseconds): pass ``.to_pydatetime()``;
- a ``tuple`` of these, nested to at most ``MAX_KEY_DEPTH`` levels (length-prefixed, so a
  nested tuple never reads like its flattened parts).

Tags follow the same text rule, non-empty and at most ``MAX_TAG_BYTES`` bytes, at most
``MAX_TAGS`` per entry.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timezone
from typing import Final
from zoneinfo import ZoneInfo

from steadycache.errors import InvalidKeyError, MissingScopeError

KeyPart = str | int | bool | bytes | None | float | date | datetime | tuple[object, ...]
_SEPARATOR: Final = ":"
#: How deep tuples may nest inside a key.
MAX_KEY_DEPTH: Final = 8
#: Ints this large or larger are written in hex: str() of them may be refused by Python.
_DECIMAL_LIMIT: Final = 10**4000
#: A tag is at most this many UTF-8 bytes; an entry has at most this many tags.
MAX_TAG_BYTES: Final = 512
MAX_TAGS: Final = 256


def _escape(text: str) -> str:
    if not text.isascii():
        _check_text(text, "key part")
    if "\\" in text or ":" in text:
        return text.replace("\\", "\\\\").replace(":", "\\c")
    return text


def _check_text(text: str, what: str) -> None:
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        raise InvalidKeyError(
            f"{what} {text!r} is not valid Unicode text (a lone surrogate at position "
            f"{exc.start}); decode request data strictly, or pass bytes"
        ) from None


def encode_part(part: object, depth: int = 0) -> str:
    """One key part as tagged, escaped text."""
    # bool before int: True is an int, but "bTrue" must not equal "i1".
    if isinstance(part, str):
        return "s" + _escape(part)
    if isinstance(part, bool):
        return "b1" if part else "b0"
    if isinstance(part, int):
        if -_DECIMAL_LIMIT < part < _DECIMAL_LIMIT:
            return "i" + str(part)
        return "h" + format(part, "x")
    if part is None:
        return "n"
    if isinstance(part, bytes):
        return "x" + part.hex()
    if isinstance(part, tuple):
        if depth >= MAX_KEY_DEPTH:
            raise InvalidKeyError(f"key tuples nest at most {MAX_KEY_DEPTH} levels deep")
        inner = _SEPARATOR.join([encode_part(item, depth + 1) for item in part])
        return f"t{len(inner)}.{inner}"
    if isinstance(part, float):
        return _encode_float(part)
    # Exact types: a subclass may carry more than isoformat() shows (pandas' nanoseconds).
    if type(part) is datetime:
        return "D" + _escape(_datetime_text(part))
    if type(part) is date:
        return "d" + part.isoformat()
    raise InvalidKeyError(
        f"key part {part!r} of type {type(part).__name__} has no canonical encoding; "
        "use str, int, bool, bytes, None, float, date, datetime or a tuple of them "
        "(lists: use a tuple)"
    )


def _encode_float(part: float) -> str:
    if math.isnan(part):
        raise InvalidKeyError(
            "key part nan has no canonical encoding: NaN equals nothing, not even itself, "
            "so no later call could find its entry; pass None, or refuse NaN upstream"
        )
    if part == 0.0:
        return "f0.0"  # -0.0 == 0.0: equal floats share one key
    # float.__repr__, not repr(): a subclass (numpy.float64) may print its own type's name.
    return "f" + float.__repr__(part)


def _datetime_text(part: datetime) -> str:
    zone = part.tzinfo
    if zone is None or type(zone) is timezone:
        return part.isoformat()  # naive, or a fixed UTC offset (which the text carries)
    if type(zone) is ZoneInfo and zone.key:
        # The offset tells the instant (and which of a repeated hour); the name tells the
        # rules, which arithmetic in that zone follows.
        return f"{part.isoformat()}[{zone.key}]"
    raise InvalidKeyError(
        f"key part {part!r} has a tzinfo ({type(zone).__name__}) with no canonical name; "
        "use a zoneinfo.ZoneInfo or a datetime.timezone, or convert it to UTC first"
    )


def check_tag(tag: object) -> str:
    """``tag`` if it is a valid tag, else ``InvalidKeyError`` saying why."""
    if not isinstance(tag, str) or not tag:
        raise InvalidKeyError(f"a tag is a non-empty str, got {tag!r}")
    if not tag.isascii():
        _check_text(tag, "tag")
    if len(tag) > MAX_TAG_BYTES or len(tag.encode()) > MAX_TAG_BYTES:
        raise InvalidKeyError(f"a tag is at most {MAX_TAG_BYTES} bytes, got {len(tag.encode())}")
    return tag


def check_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """The tags of one entry, each checked; a bare str is refused (it is not a list of tags)."""
    if isinstance(tags, str | bytes):
        raise InvalidKeyError(
            f"tags must be a list or tuple of tags, got the string {tags!r} "
            "(which would be read as one tag per character)"
        )
    checked = tuple(check_tag(tag) for tag in tags)
    if len(checked) > MAX_TAGS:
        raise InvalidKeyError(f"an entry has at most {MAX_TAGS} tags, got {len(checked)}")
    return checked


class KeyBuilder:
    """Builds the stored keys of one namespace. Cheap to call: this is on every read."""

    __slots__ = (
        "_digest_key",
        "_dimensions",
        "_hash",
        "_max_length",
        "_namespace",
        "_plain",
        "prefix",
    )

    def __init__(
        self,
        namespace: str,
        *,
        dimensions: tuple[str, ...] = (),
        hash_keys: bool = False,
        max_length: int = 250,
        generation: int = 0,
        secret: bytes = b"",
    ) -> None:
        if (
            not namespace
            or not namespace.replace("_", "").replace("-", "").replace(".", "").isalnum()
        ):
            raise InvalidKeyError(
                f"namespace {namespace!r} must be non-empty letters, digits, '_', '-' or '.'"
            )
        self._namespace = namespace
        self._dimensions = dimensions
        self._hash = hash_keys
        self._max_length = max_length
        # The namespace goes into the digest key so equal material in two namespaces hashes
        # differently; the secret (if any) stops dictionary attacks on hashed e-mails, etc.
        self._digest_key = hashlib.blake2b(secret + b"\x00" + namespace.encode()).digest()
        self.prefix = f"{namespace}{_SEPARATOR}g{generation}{_SEPARATOR}"
        self._plain = self._plain_prefix()

    def with_generation(self, generation: int) -> KeyBuilder:
        """The same builder for another namespace generation (after a namespace flush)."""
        builder = KeyBuilder.__new__(KeyBuilder)
        builder._namespace = self._namespace
        builder._dimensions = self._dimensions
        builder._hash = self._hash
        builder._max_length = self._max_length
        builder._digest_key = self._digest_key
        builder.prefix = f"{self._namespace}{_SEPARATOR}g{generation}{_SEPARATOR}"
        builder._plain = builder._plain_prefix()
        return builder

    def _plain_prefix(self) -> str | None:
        # What a plain string key is appended to, when such a key needs no other work.
        if self._dimensions or self._hash:
            return None
        return self.prefix + "s"

    def build(self, key: object, scope: Mapping[str, object] | None = None) -> str:
        """The stored key for ``key`` (a part or a tuple of parts) within ``scope``."""
        # Fast path, the commonest read: one plain ASCII string, no scope, no hashing.
        if (
            type(key) is str
            and key.isascii()
            and scope is None
            and self._plain is not None
            and ":" not in key
            and "\\" not in key
            and len(key) + len(self._plain) <= self._max_length
        ):
            return self._plain + key
        return self._build(key, scope)

    def _build(self, key: object, scope: Mapping[str, object] | None) -> str:
        if self._dimensions:
            material = self._scope_material(scope)
        else:
            if scope:
                raise InvalidKeyError(
                    f"namespace {self._namespace!r} declares no scope dimensions, "
                    f"got scope={dict(scope)!r}"
                )
            material = ""
        if (
            type(key) is str
            and key.isascii()
            and not self._hash
            and "\\" not in key
            and ":" not in key
        ):
            # Fast path for the commonest key: one plain ASCII string part.
            material += "s" + key
        elif isinstance(key, tuple):
            if not key:
                raise InvalidKeyError("a key tuple must have at least one part")
            material += _SEPARATOR.join([encode_part(part) for part in key])
        else:
            material += encode_part(key)
        if self._hash:
            digest = hashlib.blake2b(
                material.encode(), digest_size=20, key=self._digest_key
            ).hexdigest()
            return self.prefix + "#" + digest
        stored = self.prefix + material
        if len(stored) > self._max_length:
            raise InvalidKeyError(
                f"key for namespace {self._namespace!r} is {len(stored)} characters, over "
                f"max_key_length={self._max_length}; shorten it or set hash_keys=True"
            )
        return stored

    def _scope_material(self, scope: Mapping[str, object] | None) -> str:
        if scope is None:
            raise MissingScopeError(self._namespace, self._dimensions)
        missing = tuple(d for d in self._dimensions if d not in scope)
        if missing:
            raise MissingScopeError(self._namespace, missing)
        extra = set(scope) - set(self._dimensions)
        if extra:
            raise InvalidKeyError(
                f"namespace {self._namespace!r} got undeclared scope dimension(s) "
                f"{', '.join(sorted(extra))}; declared: {', '.join(self._dimensions)}"
            )
        return "".join(encode_part(scope[d]) + _SEPARATOR for d in self._dimensions)
