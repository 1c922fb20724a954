"""Eviction policies for the memory store and the ``simulate`` command.

Each policy lives in its own module and implements :class:`EvictionPolicy`; they are
validated against libCacheSim (``benchmarks/eviction_vs_libcachesim.py``).
"""

from __future__ import annotations

from steadycache.eviction.arc import ARCPolicy
from steadycache.eviction.base import EvictionPolicy
from steadycache.eviction.fifo import FIFOPolicy
from steadycache.eviction.lfu import LFUPolicy
from steadycache.eviction.lru import LRUPolicy
from steadycache.eviction.s3fifo import S3FIFOPolicy
from steadycache.eviction.sieve import SievePolicy
from steadycache.eviction.ttl import TTLPolicy
from steadycache.eviction.wtinylfu import AdaptiveWTinyLFUPolicy, WTinyLFUPolicy
from steadycache.policy.eviction import EVICTION_POLICIES

__all__ = ["DEFAULT_POLICY", "POLICIES", "EvictionPolicy", "make_policy"]

POLICIES: dict[str, type[EvictionPolicy]] = {
    policy.name: policy
    for policy in (
        FIFOPolicy,
        LRUPolicy,
        LFUPolicy,
        TTLPolicy,
        ARCPolicy,
        SievePolicy,
        S3FIFOPolicy,
        WTinyLFUPolicy,
        AdaptiveWTinyLFUPolicy,
    )
}

# The policy package names the valid choices (it sits below this package): they must match.
assert set(POLICIES) == set(EVICTION_POLICIES), "policy.EVICTION_POLICIES is out of date"

#: Chosen from benchmarks/results/eviction_vs_libcachesim.md: the policy whose worst
#: shortfall against the best policy, over every trace and cache size, is smallest
#: (W-TinyLFU: at most 3.8 pp behind; S3-FIFO, next, trails by 10.9 pp on P6 at 10%).
DEFAULT_POLICY: str = "wtinylfu"


def make_policy(name: str, capacity: int) -> EvictionPolicy:
    """A new policy by registry name; ``ValueError`` naming the valid ones otherwise."""
    try:
        policy = POLICIES[name]
    except KeyError:
        raise ValueError(
            f"unknown eviction policy {name!r}; valid policies: {', '.join(sorted(POLICIES))}"
        ) from None
    return policy(capacity)
