"""Fleet leases held by this process: renewed while their load runs, released on every exit.

A lease (``SharedTiers.leases``) makes one process of the fleet load a missing key. Its TTL
is how long a *crashed* holder can delay the others, so it is short (``lease_ttl``); a live
holder whose load takes longer keeps it by renewing it every third of the TTL (a
compare-and-``PEXPIRE`` script, so a lease an invalidation deleted is not brought back).
One renewal thread per ``Cache``, one timer per lease for ``AsyncCache``.

``HeldLease`` tracks one lease through a load: whatever ends the load (a value written, a
write refused, a loader error, an encoding error, a timeout, a cancellation) spends it
exactly once, so no exit leaves a lease behind for the fleet to wait on.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Awaitable
from typing import Final, Protocol

from steadycache.errors import StoreError

logger = logging.getLogger("steadycache")

#: A lease is renewed when this fraction of its TTL has passed since the last renewal.
RENEW_FRACTION: Final = 1 / 3
#: A waiter polls the shared tier after 2 ms, doubling to 50 ms between polls...
LEASE_POLL_FIRST: Final = 0.002
LEASE_POLL_MAX: Final = 0.05
#: ...but never sleeps past the holder's lease expiry plus this: then it claims the lease.
LEASE_EXPIRY_SLACK: Final = 0.002


class LeaseRenewer(Protocol):
    """The store that holds the leases (a sync shared store)."""

    def renew_lease(self, key: str, token: str, ttl: float) -> bool: ...


class AsyncLeaseRenewer(Protocol):
    """The store that holds the leases (an asyncio shared store)."""

    def renew_lease(self, key: str, token: str, ttl: float) -> Awaitable[bool]: ...


class HeldLease:
    """One lease this process holds for one load of ``key``."""

    __slots__ = ("active", "detached", "key", "lost", "timer", "token", "ttl")

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
        self.timer: asyncio.TimerHandle | None = None

    def spend(self) -> bool:
        """Mark the lease used up; whether it was still active (the caller then releases)."""
        was_active = self.active
        self.active = False
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        return was_active


class LeaseKeeper:
    """Renews the leases of a ``Cache``'s loads from one daemon thread (started on demand)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, HeldLease, LeaseRenewer]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.renewals = 0
        self.renewal_failures = 0

    def hold(self, store: LeaseRenewer, key: str, token: str, ttl: float) -> HeldLease:
        """Start renewing ``token``'s lease on ``key`` until the returned lease is spent."""
        held = HeldLease(key, token, ttl)
        due = time.monotonic() + ttl * RENEW_FRACTION
        with self._wake:
            if self._stopping:
                return held
            earliest = self._heap[0][0] if self._heap else None
            heapq.heappush(self._heap, (due, next(self._order), held, store))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="steadycache-leases", daemon=True
                )
                self._thread.start()
            elif earliest is None or due < earliest:
                self._wake.notify()
        return held

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and (
                    not self._heap or self._heap[0][0] > time.monotonic()
                ):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._wake.wait(timeout)
                if self._stopping:
                    return
                _, _, held, store = heapq.heappop(self._heap)
            if held.active:
                self._renew(held, store)

    def _renew(self, held: HeldLease, store: LeaseRenewer) -> None:
        try:
            renewed = store.renew_lease(held.key, held.token, held.ttl)
        except StoreError as error:
            # Try again next period; if Redis stays away the lease expires, which is safe.
            self.renewal_failures += 1
            logger.warning("lease renewal failed (it may expire): %s", error)
            renewed = True
        if not renewed:
            held.lost = True
            return
        self.renewals += 1
        due = time.monotonic() + held.ttl * RENEW_FRACTION
        with self._wake:
            if held.active and not self._stopping:
                heapq.heappush(self._heap, (due, next(self._order), held, store))

    def close(self) -> None:
        """Stop renewing (loads still running then keep their lease until it expires)."""
        with self._wake:
            self._stopping = True
            thread, self._thread = self._thread, None
            self._wake.notify()
        if thread is not None:
            thread.join(timeout=2.0)


class AsyncLeaseKeeper:
    """Renews the leases of an ``AsyncCache``'s loads: one timer per lease, a task per renewal."""

    def __init__(self) -> None:
        self._renewing: set[asyncio.Task[None]] = set()
        self.renewals = 0
        self.renewal_failures = 0

    def hold(self, store: AsyncLeaseRenewer, key: str, token: str, ttl: float) -> HeldLease:
        """Start renewing ``token``'s lease on ``key`` until the returned lease is spent."""
        held = HeldLease(key, token, ttl)
        self._schedule(held, store)
        return held

    def _schedule(self, held: HeldLease, store: AsyncLeaseRenewer) -> None:
        loop = asyncio.get_running_loop()
        held.timer = loop.call_later(held.ttl * RENEW_FRACTION, self._due, held, store)

    def _due(self, held: HeldLease, store: AsyncLeaseRenewer) -> None:
        held.timer = None
        if not held.active:
            return
        task = asyncio.get_running_loop().create_task(self._renew(held, store))
        self._renewing.add(task)  # the loop holds tasks only weakly
        task.add_done_callback(self._renewing.discard)

    async def _renew(self, held: HeldLease, store: AsyncLeaseRenewer) -> None:
        try:
            renewed = await store.renew_lease(held.key, held.token, held.ttl)
        except StoreError as error:
            self.renewal_failures += 1
            logger.warning("lease renewal failed (it may expire): %s", error)
            renewed = True
        if not renewed:
            held.lost = True
            return
        self.renewals += 1
        if held.active:
            self._schedule(held, store)

    async def aclose(self) -> None:
        """Let renewals in progress finish."""
        if self._renewing:
            await asyncio.gather(*self._renewing, return_exceptions=True)
