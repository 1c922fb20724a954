"""Decision 7, distributed consistency: one process's copies, or two tiers over Redis."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from steadycache.policy import checks
from steadycache.policy.checks import to_seconds


@dataclass(frozen=True, slots=True)
class LocalOnly:
    """Entries live in this process only; other processes have their own copies."""


ON_STORE_ERROR: Final = ("fallback", "raise")


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedTiers:
    """An in-process L1 in front of a shared Redis/Valkey L2, kept coherent by a backplane.

    - ``l1_max_age``: an L1 copy lives at most this long, so a lost invalidation message
      cannot keep a stale copy for longer.
    - ``leases``: one process across the fleet loads a missing key (``SET NX PX``); a
      lease also rejects a load that started before an invalidation (stale-set race).
    - ``lease_ttl``: a crashed holder's lease expires after this long, so it delays the
      other processes' callers by at most this much; a live holder renews its lease every
      third of it while its load runs, however long the load takes. ``SingleFlight``'s
      ``wait_timeout`` must be at least twice this: one lease to see a crashed holder's
      lease expire, one for the load of the process that takes over.
    - ``wait_replicas`` / ``wait_timeout``: after a write, ``WAIT`` for that many replica
      acknowledgements (0: asynchronous replication, Redis's default).
    - ``on_store_error``: ``"fallback"`` (serve from L1, stale, then the loader; counted
      and logged) or ``"raise"`` (``StoreError`` reaches the caller).
    """

    l1_max_age: float = 5.0
    leases: bool = True
    lease_ttl: float = 2.0
    wait_replicas: int = 0
    wait_timeout: float = 0.1
    on_store_error: str = "fallback"

    def __post_init__(self) -> None:
        for name in ("l1_max_age", "lease_ttl", "wait_timeout"):
            object.__setattr__(
                self, name, to_seconds(getattr(self, name), decision="consistency", what=name)
            )
        checks.integer(self.wait_replicas, decision="consistency", what="wait_replicas", minimum=0)
        checks.flag(self.leases, decision="consistency", what="SharedTiers leases")
        checks.one_of(
            self.on_store_error, ON_STORE_ERROR, decision="consistency", what="on_store_error"
        )


Consistency = LocalOnly | SharedTiers
