"""Decision 5, eviction: which in-process entries leave when the memory store is full."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from steadycache.errors import ConfigurationError
from steadycache.policy import checks

DEFAULT_MAX_ENTRIES: Final = 10_000
#: The memory store's eviction policies by name (``steadycache.eviction`` checks at import
#: that its registry is exactly these).
EVICTION_POLICIES: Final = (
    "fifo",
    "lru",
    "lfu",
    "ttl",
    "arc",
    "sieve",
    "s3fifo",
    "wtinylfu",
    "wtinylfu-adaptive",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Eviction:
    """Which in-process entries leave when the namespace's memory store is full.

    ``policy`` is a name from ``steadycache.eviction.POLICIES`` or ``"default"`` (chosen
    from measurements on real traces; see the README). Give ``max_entries``, ``max_bytes``
    or both.
    """

    policy: str = "default"
    max_entries: int | None = DEFAULT_MAX_ENTRIES
    max_bytes: int | None = None
    #: A shared Redis whose ``maxmemory-policy`` is ``noeviction`` refuses writes when full;
    #: steadycache refuses to start on such a server unless this is True.
    accept_redis_noeviction: bool = False

    def __post_init__(self) -> None:
        if self.max_entries is None and self.max_bytes is None:
            raise ConfigurationError(
                "eviction", "an unbounded cache is a memory leak: give max_entries or max_bytes"
            )
        for name in ("max_entries", "max_bytes"):
            value = getattr(self, name)
            if value is not None:
                checks.integer(value, decision="eviction", what=name)
        checks.flag(
            self.accept_redis_noeviction, decision="eviction", what="accept_redis_noeviction"
        )
        if not isinstance(self.policy, str) or (
            self.policy != "default" and self.policy not in EVICTION_POLICIES
        ):
            valid = ", ".join(["default", *sorted(EVICTION_POLICIES)])
            raise ConfigurationError(
                "eviction", f"unknown eviction policy {self.policy!r}; choose one of {valid}"
            )
