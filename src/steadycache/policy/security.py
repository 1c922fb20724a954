"""Decision 8, key scope and security: mandatory scope, hashed keys, the codec."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from steadycache.errors import ConfigurationError
from steadycache.policy import checks


@dataclass(frozen=True, slots=True, init=False)
class Scope:
    """Dimensions every key of the namespace must carry (``Scope("tenant_id", "user_id")``).

    A call that omits one raises ``MissingScopeError`` before anything is read or written,
    so two users (or tenants, or locales) can never be served each other's entries.
    """

    dimensions: tuple[str, ...]

    def __init__(self, *dimensions: str) -> None:
        seen: set[str] = set()
        for dimension in dimensions:
            if not isinstance(dimension, str) or not dimension.isidentifier():
                raise ConfigurationError(
                    "security", f"scope dimension must be an identifier string, got {dimension!r}"
                )
            if dimension in seen:
                raise ConfigurationError("security", f"scope dimension {dimension!r} is repeated")
            seen.add(dimension)
        object.__setattr__(self, "dimensions", tuple(dimensions))


CODECS: Final = ("json", "msgpack")
MAX_KEY_LENGTH_LIMIT: Final = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Security:
    """Key scope, key hashing and the value codec.

    ``hash_keys`` replaces the key material in stored key names by a keyed digest, so
    personal data never appears in a key listing; it is required for PERSONAL data.
    Only data-only codecs exist: pickle is never a default and not offered.
    """

    scope: Scope = field(default_factory=Scope)
    hash_keys: bool = False
    codec: str = "json"
    max_key_length: int = 250

    def __post_init__(self) -> None:
        if not isinstance(self.scope, Scope):
            raise ConfigurationError("security", f"scope must be Scope(...), got {self.scope!r}")
        checks.flag(self.hash_keys, decision="security", what="Security hash_keys")
        if not isinstance(self.codec, str) or self.codec not in CODECS:
            raise ConfigurationError(
                "security",
                f"unknown codec {self.codec!r}; choose one of {', '.join(CODECS)} "
                "(pickle is refused: it executes code from whoever can write the cache)",
            )
        checks.integer(self.max_key_length, decision="security", what="max_key_length")
        if not 32 <= self.max_key_length <= MAX_KEY_LENGTH_LIMIT:
            raise ConfigurationError(
                "security",
                f"max_key_length must be between 32 and {MAX_KEY_LENGTH_LIMIT}, "
                f"got {self.max_key_length}",
            )
