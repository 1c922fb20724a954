"""Renewing the fleet leases this process holds, while their loads run.

A lease's TTL is how long a *crashed* holder can delay the rest of the fleet, so it is
short; a live holder whose load takes longer keeps its lease by renewing it every third of
the TTL (a compare-and-``PEXPIRE`` script, so a lease an invalidation deleted is not brought
back). One service per cache (a thread, or a task) renews every held lease from a heap of
due times; it starts with the first lease.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import Any, Protocol

from steadycache._runtime import AsyncEvent, AsyncRuntime
from steadycache.errors import StoreError
from steadycache.stampede.leases import RENEW_FRACTION, HeldLease

logger = logging.getLogger("steadycache")


class AsyncLeaseRenewer(Protocol):
    """The shared store holding the leases."""

    async def renew_lease(self, key: str, token: str, ttl: float) -> bool: ...


class AsyncLeaseKeeper:
    """Renews held leases until they are spent."""

    def __init__(self, runtime: AsyncRuntime) -> None:
        self._runtime = runtime
        self._heap: list[tuple[float, int, HeldLease, AsyncLeaseRenewer]] = []
        self._order = itertools.count()
        self._wake = AsyncEvent()
        self._lock = threading.Lock()  # threads only: nothing awaits while it is held
        self._service: Any = None
        self._starting = False
        self._stopping = False
        self.renewals = 0
        self.renewal_failures = 0

    def hold(self, store: AsyncLeaseRenewer, key: str, token: str, ttl: float) -> HeldLease:
        """Start renewing ``token``'s lease on ``key`` until the returned lease is spent."""
        held = HeldLease(key, token, ttl)
        due = time.monotonic() + ttl * RENEW_FRACTION
        with self._lock:
            if self._stopping:
                return held
            earliest = self._heap[0][0] if self._heap else None
            heapq.heappush(self._heap, (due, next(self._order), held, store))
            start = not self._starting
            self._starting = True
        if start:
            self._service = self._runtime.start_service("steadycache-leases", self._run)
        elif earliest is None or due < earliest:
            self._wake.set()
        return held

    async def _run(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    return
                now = time.monotonic()
                due = self._heap[0][0] if self._heap else None
                if due is not None and due <= now:
                    _, _, held, store = heapq.heappop(self._heap)
                else:
                    held = None
                    self._wake.clear()  # a hold() after this sets it again: no lost wake-up
            if held is None:
                await self._wake.wait(None if due is None else due - now)
            elif held.active:
                await self._renew(held, store)

    async def _renew(self, held: HeldLease, store: AsyncLeaseRenewer) -> None:
        try:
            renewed = await store.renew_lease(held.key, held.token, held.ttl)
        except StoreError as error:
            # Try again next period; if Redis stays away the lease expires, which is safe.
            self.renewal_failures += 1
            logger.warning("lease renewal failed (it may expire): %s", error)
            renewed = True
        if not renewed:
            held.lost = True  # an invalidation deleted it: the load's write will be refused
            return
        self.renewals += 1
        due = time.monotonic() + held.ttl * RENEW_FRACTION
        with self._lock:
            if held.active and not self._stopping:
                heapq.heappush(self._heap, (due, next(self._order), held, store))

    async def aclose(self) -> None:
        """Stop renewing (loads still running keep their lease until it expires)."""
        with self._lock:
            self._stopping = True
            service = self._service
        self._wake.set()
        if service is not None:
            await self._runtime.stop_service(service)
