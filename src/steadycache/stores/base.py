"""The store contract: a small set of operations every backend implements.

Stores hold ``Entry`` objects under fully built string keys. They decide nothing about
freshness (the pure core does); they only drop entries past ``stale_until``, which can
never be served. The contract and the optional capabilities (leases, marks, documents, two
tiers) are protocols in ``stores/_async/capabilities.py`` (``Store``, ``LeaseStore``... in
the generated ``_sync`` twin), checked once when a namespace is assembled.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Counters and gauges of one store (one tier of one namespace)."""

    tier: str
    hits: int
    misses: int
    sets: int
    deletes: int
    evictions: int
    expirations: int
    rejections: int
    garbled: int
    errors: int
    #: This namespace's entries in the tier; None when the tier cannot count them (a shared
    #: Redis holds other namespaces' keys too, and counting one's means a scan).
    entries: int | None
    bytes: int
    #: Fields that describe the whole server rather than this namespace (a shared Redis
    #: reports its own evictions and memory: the client cannot split them per namespace).
    server_wide: tuple[str, ...] = ()


class WriteOutcome(enum.IntEnum):
    """What a versioned (and possibly leased) write to a shared store did."""

    WRITTEN = 1
    #: The store holds a verified entry with a newer version: the write was refused.
    OLDER_THAN_STORED = 0
    #: The lease was not (or no longer) the writer's: invalidated while loading.
    LEASE_LOST = -1


class MarkListener(Protocol):
    """Learns invalidation counters other processes moved (a namespace's state)."""

    def learn_mark(self, field: str, value: int) -> None: ...
