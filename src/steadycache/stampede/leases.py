"""Fleet leases held by this process for one load each, and how they are renewed.

A lease (``SharedTiers.leases``) makes one process of the fleet load a missing key.
``HeldLease`` tracks one lease through a load: whatever ends the load (a value written, a
write refused, a loader error, an encoding error, a timeout, a cancellation) spends it
exactly once, so no exit leaves a lease behind for the fleet to wait on. The renewal
service is ``LeaseKeeper`` / ``AsyncLeaseKeeper`` (``_async/lease_keeper.py``).
"""

from __future__ import annotations

from typing import Final

#: A lease is renewed when this fraction of its TTL has passed since the last renewal.
RENEW_FRACTION: Final = 1 / 3
#: A waiter polls the shared tier after 2 ms, doubling to 50 ms between polls...
LEASE_POLL_FIRST: Final = 0.002
LEASE_POLL_MAX: Final = 0.05
#: ...but never sleeps past the holder's lease expiry plus this: then it claims the lease.
LEASE_EXPIRY_SLACK: Final = 0.002


class HeldLease:
    """One lease this process holds for one load of ``key``."""

    __slots__ = ("active", "detached", "key", "lost", "token", "ttl")

    def __init__(self, key: str, token: str, ttl: float) -> None:
        self.key = key
        self.token = token
        self.ttl = ttl
        #: Renewed until spent; spent once the load's write or release took the lease.
        self.active = True
        #: Handed to a load that finishes in the background (soft timeout): it spends it.
        self.detached = False
        #: A renewal found the lease gone (an invalidation deleted it): the write will fail.
        self.lost = False

    def spend(self) -> bool:
        """Mark the lease used up; whether it was still active (the caller then releases)."""
        was_active = self.active
        self.active = False
        return was_active
