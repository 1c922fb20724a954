"""Counters per namespace, snapshots per namespace and tier, and a rolling hit ratio.

Counters are plain integer attributes bumped on the request path without a lock: in
CPython an ``obj.count += 1`` on an int runs no Python code and no eval-breaker check, so
threads cannot interleave inside it (``tests/test_concurrency.py`` checks exact totals
under contention). Store-tier counters live in the stores, under their own locks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from steadycache.stores.base import StoreStats

COUNTERS: Final = (
    "hits",
    "misses",
    "stale_served",
    "stale_served_on_error",
    "early_refreshes",
    "background_refreshes",
    "refresh_ahead",
    "loads",
    "load_errors",
    "coalesced",
    "lock_waits",
    "wait_timeouts",
    "soft_timeouts",
    "hard_timeouts",
    "origin_rejections",
    "breaker_open",
    "sets",
    "deletes",
    "store_errors",
    "invalidations",
    "warmed",
    "lease_waits",
    "stale_sets_rejected",
    "older_writes_rejected",
    "refreshes_skipped",
    "refresh_backoffs",
    "tag_invalidations",
    "tag_stale_dropped",
    "writes",
    "write_errors",
    "journaled",
    "audit_offers",
)


class NamespaceCounters:
    """The mutable counters of one namespace (across all its tiers)."""

    __slots__ = (*COUNTERS, "load_seconds")

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.stale_served = 0
        self.stale_served_on_error = 0
        self.early_refreshes = 0
        self.background_refreshes = 0
        self.refresh_ahead = 0
        self.loads = 0
        self.load_errors = 0
        self.coalesced = 0
        self.lock_waits = 0
        self.wait_timeouts = 0
        self.soft_timeouts = 0
        self.hard_timeouts = 0
        self.origin_rejections = 0
        self.breaker_open = 0
        self.sets = 0
        self.deletes = 0
        self.store_errors = 0
        self.invalidations = 0
        self.warmed = 0
        self.lease_waits = 0
        self.stale_sets_rejected = 0
        #: Leased writes refused because the shared tier already held a newer version.
        self.older_writes_rejected = 0
        self.refreshes_skipped = 0
        self.refresh_backoffs = 0
        #: Tags this process invalidated; entries refused because a tag moved on since.
        self.tag_invalidations = 0
        self.tag_stale_dropped = 0
        #: Write-through / write-behind writes; writes whose writer or journal failed.
        self.writes = 0
        self.write_errors = 0
        self.journaled = 0
        #: Reads handed to a staleness auditor.
        self.audit_offers = 0
        self.load_seconds = 0.0


class RollingRatio:
    """Hit ratio over the last ``window`` seconds, from once-a-second samples of counters."""

    __slots__ = ("_samples", "_window", "next_sample_at")

    def __init__(self, window: float) -> None:
        self._window = window
        self._samples: deque[tuple[float, int, int]] = deque()
        self.next_sample_at = float("-inf")

    def sample(self, now: float, hits: int, misses: int) -> None:
        """Record cumulative counters at ``now`` (callers throttle with ``next_sample_at``)."""
        self._samples.append((now, hits, misses))
        self.next_sample_at = now + 1.0
        horizon = now - self._window
        # Keep exactly one sample at or before the horizon: the window's starting point.
        while len(self._samples) > 1 and self._samples[1][0] <= horizon:
            self._samples.popleft()

    def ratio(self, now: float, hits: int, misses: int) -> float | None:
        """Hits / lookups since the window's start; None when there were no lookups."""
        self.sample(now, hits, misses)
        _, start_hits, start_misses = self._samples[0]
        lookups = (hits - start_hits) + (misses - start_misses)
        if lookups <= 0:
            return None
        return (hits - start_hits) / lookups


@dataclass(frozen=True, slots=True)
class NamespaceStats:
    """A snapshot of one namespace: its counters, its tiers, and its hit ratios."""

    namespace: str
    counters: dict[str, float]
    tiers: tuple[StoreStats, ...] = field(default_factory=tuple)
    hit_ratio: float | None = None
    rolling_hit_ratio: float | None = None

    def __getattr__(self, name: str) -> float:
        # stats.hits reads like a field; counters stay one dict so new ones need no schema.
        try:
            return self.counters[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass(frozen=True, slots=True, eq=False)
class CacheStats(Mapping[str, NamespaceStats]):
    """A snapshot of every namespace of a cache, in the shape of one namespace's.

    A mapping of namespace name to its ``NamespaceStats`` (``stats["seats"].hits``); and,
    as a ``NamespaceStats`` reads, ``counters`` (summed over the namespaces), each counter
    as an attribute (``stats.hits``) and ``hit_ratio`` (of the sums). Tiers and rolling
    ratios stay per namespace: a shared server's figures and different windows do not add.
    """

    namespaces: Mapping[str, NamespaceStats]
    counters: dict[str, float]
    hit_ratio: float | None = None

    @classmethod
    def of(cls, namespaces: Mapping[str, NamespaceStats]) -> CacheStats:
        """The totals of ``namespaces``' snapshots."""
        totals: dict[str, float] = {}
        for stats in namespaces.values():
            for name, value in stats.counters.items():
                totals[name] = totals.get(name, 0) + value
        return cls(dict(namespaces), totals, _hit_ratio(totals))

    def __getitem__(self, name: str) -> NamespaceStats:
        return self.namespaces[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.namespaces)

    def __len__(self) -> int:
        return len(self.namespaces)

    def __getattr__(self, name: str) -> float:
        # stats.hits, as on one namespace's stats. (object.__getattribute__: a copy being
        # built has no counters yet, and self.counters would recurse.)
        counters: dict[str, float] = object.__getattribute__(self, "counters")
        try:
            return counters[name]
        except KeyError:
            raise AttributeError(name) from None


def _hit_ratio(counters: Mapping[str, float]) -> float | None:
    # Stale answers were served from the cache: they count as hits.
    served = counters.get("hits", 0) + counters.get("stale_served", 0)
    lookups = served + counters.get("misses", 0)
    return (served / lookups) if lookups else None


def snapshot(
    namespace: str,
    counters: NamespaceCounters,
    tiers: tuple[StoreStats, ...],
    rolling: RollingRatio,
    now: float,
    extra: dict[str, int] | None = None,
) -> NamespaceStats:
    """Freeze ``counters`` into a ``NamespaceStats``.

    ``garbled`` (unreadable entries met in any tier: each was a miss) is summed from the
    tiers, which meet them; ``extra`` adds the counters of the namespace's shared parts
    (two tiers' ``fallbacks``, the backplane's ``resyncs``, ...) when it has them.
    """
    values: dict[str, float] = {name: getattr(counters, name) for name in COUNTERS}
    values["load_seconds"] = counters.load_seconds
    values["garbled"] = sum(tier.garbled for tier in tiers)
    if extra:
        values.update(extra)
    served = counters.hits + counters.stale_served
    return NamespaceStats(
        namespace=namespace,
        counters=values,
        tiers=tiers,
        hit_ratio=_hit_ratio(values),
        rolling_hit_ratio=rolling.ratio(now, served, counters.misses),
    )
