"""Replay a trace through the memory store's own eviction policies (``steadycache simulate``).

The policies are driven exactly as the store drives them: a resident key is a hit and is
reported with ``on_hit``; anything else is a miss and is inserted with ``on_insert``
(which may refuse an object larger than the cache, as libCacheSim does).
"""

from __future__ import annotations

from dataclasses import dataclass

from steadycache.eviction import DEFAULT_POLICY, POLICIES, EvictionPolicy, make_policy

#: ``default`` names whatever the memory store uses when no policy is chosen.
DEFAULT_NAME = "default"


@dataclass(frozen=True)
class SimulationResult:
    """One policy at one size."""

    policy: str
    size: int
    hits: int
    requests: int

    @property
    def hit_ratio(self) -> float:
        """Hits over requests (first accesses count as misses)."""
        return self.hits / self.requests if self.requests else 0.0


def policy_names(text: str) -> list[str]:
    """Parse ``lru,arc,default``; ``ValueError`` naming the valid names on a typo."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError("no eviction policy given")
    valid = [*sorted(POLICIES), DEFAULT_NAME]
    for name in names:
        if name not in valid:
            raise ValueError(
                f"unknown eviction policy {name!r}; valid policies: {', '.join(valid)}"
            )
    return names


def simulate(
    policy: str, capacity: int, keys: list[int], sizes: list[int] | None
) -> SimulationResult:
    """Hit count of ``policy`` at ``capacity`` (objects when ``sizes`` is None, else bytes)."""
    replay = Replay([policy], [capacity], by_bytes=sizes is not None)
    replay.feed(keys, sizes)
    return replay.results()[0]


class Replay:
    """Every policy at every size, fed the same requests chunk by chunk as a trace is read.

    Each (policy, size) keeps its own policy object between chunks, so feeding a trace in
    chunks gives exactly the hits of feeding it whole, without holding the whole trace.
    """

    def __init__(self, policies: list[str], capacities: list[int], *, by_bytes: bool) -> None:
        self._by_bytes = by_bytes
        self._runs = [
            _Run(
                name,
                capacity,
                make_policy(DEFAULT_POLICY if name == DEFAULT_NAME else name, capacity),
            )
            for name in policies
            for capacity in capacities
        ]
        self._requests = 0

    def feed(self, keys: list[int], sizes: list[int] | None) -> None:
        """The next requests, in trace order (``sizes`` required when sizing in bytes)."""
        if self._by_bytes and sizes is None:
            raise ValueError("a replay in bytes needs the requests' sizes")
        for run in self._runs:
            run.hits += _replay(run.policy, keys, sizes if self._by_bytes else None)
        self._requests += len(keys)

    @property
    def requests(self) -> int:
        """Requests fed so far."""
        return self._requests

    def results(self) -> list[SimulationResult]:
        """One result per (policy, size), policies in the order given, then sizes."""
        return [
            SimulationResult(
                policy=run.name, size=run.capacity, hits=run.hits, requests=self._requests
            )
            for run in self._runs
        ]


@dataclass
class _Run:
    name: str
    capacity: int
    policy: EvictionPolicy
    hits: int = 0


def _replay(policy: EvictionPolicy, keys: list[int], sizes: list[int] | None) -> int:
    contains = policy.__contains__
    on_hit = policy.on_hit
    on_insert = policy.on_insert
    hits = 0
    # Bound methods and plain ints: this loop is the whole cost of a simulation.
    if sizes is None:
        for key in keys:
            if contains(key):
                hits += 1
                on_hit(key)
            else:
                on_insert(key, 1)
    else:
        for key, size in zip(keys, sizes, strict=True):
            if contains(key):
                hits += 1
                on_hit(key)
            else:
                on_insert(key, size)
    return hits
