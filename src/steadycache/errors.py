"""The steadycache error tree. Every error the library raises on purpose is a ``CacheError``.

::

    CacheError
    ├── ConfigurationError          a policy decision is invalid or contradicts another
    │   └── NotAvailableYetError    a decision whose machinery is not in this release
    ├── InvalidKeyError             a key part cannot be encoded canonically, or is too long
    ├── MissingScopeError           a namespace's declared scope dimension was not given
    ├── SerializationError          a value cannot be encoded by the namespace's codec
    │   └── ValueTooLargeError      the encoded value exceeds the namespace's size limit
    ├── GarbledEntryError           internal only: a stored entry cannot be decoded
    │                               (never reaches a caller: it becomes a miss + a counter)
    ├── LoaderError                 the user's loader raised; the original is ``__cause__``
    ├── LoadTimeoutError            waited too long for another caller's load of the key
    ├── UsageError                  the API was called the wrong way (sync vs async, ...)
    ├── StoreError                  a store backend failed; the original is ``__cause__``
    └── OriginOverloaded            the origin limiter refused a load (budget or breaker)

Backend and loader errors chain their cause (``raise ... from exc``) so the original
traceback is never lost.
"""

from __future__ import annotations


class CacheError(Exception):
    """Root of every error steadycache raises on purpose."""


class ConfigurationError(CacheError, ValueError):
    """A policy decision is invalid, or contradicts another decision.

    The message names the decision (``pattern``, ``stampede``, ...) and the reason.
    """

    def __init__(self, decision: str, reason: str) -> None:
        super().__init__(f"{decision}: {reason}")
        self.decision = decision
        self.reason = reason


class NotAvailableYetError(ConfigurationError):
    """The decision is valid but its machinery is not part of this release.

    Raised instead of silently ignoring the choice.
    """


class InvalidKeyError(CacheError, ValueError):
    """A key part has a type that cannot be encoded canonically, or the key is too long."""


class MissingScopeError(CacheError, ValueError):
    """A call omitted one of the scope dimensions its namespace declares."""

    def __init__(self, namespace: str, missing: tuple[str, ...]) -> None:
        names = ", ".join(missing)
        super().__init__(
            f"namespace {namespace!r} requires scope dimension(s) {names}; "
            f"pass them as scope={{...}} so entries of different scopes never share a key"
        )
        self.namespace = namespace
        self.missing = missing


class SerializationError(CacheError, TypeError):
    """A value cannot be encoded by the namespace's codec; nothing was written."""


class ValueTooLargeError(SerializationError):
    """The encoded value is larger than the namespace allows; nothing was written."""

    def __init__(self, namespace: str, size: int, limit: int) -> None:
        super().__init__(
            f"value for namespace {namespace!r} encodes to {size} bytes, "
            f"over the limit of {limit} bytes (Namespace max_value_bytes)"
        )
        self.size = size
        self.limit = limit


class GarbledEntryError(CacheError):
    """A stored entry is truncated, foreign, tampered or otherwise unreadable.

    Internal: the facades turn it into a miss and count it; callers never see it.
    """


class LoaderError(CacheError):
    """The loader raised. ``__cause__`` is the loader's own exception."""

    def __init__(self, namespace: str, key: str, cause: BaseException) -> None:
        super().__init__(f"loader for namespace {namespace!r}, key {key!r} failed: {cause!r}")
        self.namespace = namespace
        self.key = key


class LoadTimeoutError(CacheError, TimeoutError):
    """A caller waited ``SingleFlight.wait_timeout`` for another caller's load, in vain."""


class UsageError(CacheError, TypeError):
    """The API was used the wrong way, e.g. a sync decorator on an ``async def``."""


class StoreError(CacheError):
    """A store backend failed. ``__cause__`` is the backend's own exception."""


class OriginOverloaded(CacheError):  # noqa: N818 - the name is the condition users look for
    """The origin limiter refused a load: concurrency budget exhausted or breaker open."""
