"""Replay a trace through the memory store's own eviction policies (``steadycache simulate``).

The policies are driven exactly as the store drives them: a resident key is a hit and is
reported with ``on_hit``; anything else is a miss and is inserted with ``on_insert``
(which may refuse an object larger than the cache, as libCacheSim does).
"""

from __future__ import annotations

from dataclasses import dataclass

from steadycache.eviction import DEFAULT_POLICY, POLICIES, make_policy

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
    instance = make_policy(DEFAULT_POLICY if policy == DEFAULT_NAME else policy, capacity)
    contains = instance.__contains__
    on_hit = instance.on_hit
    on_insert = instance.on_insert
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
    return SimulationResult(policy=policy, size=capacity, hits=hits, requests=len(keys))
