"""Single-flight: concurrent loads of one key share one loader call.

The first caller for a key becomes the leader and loads; later callers find its flight and
wait for the outcome, bounded by ``SingleFlight.wait_timeout``.

A leader may first wait for another process's fleet lease before it loads itself (that
process crashed, say). Its followers' wait then counts from when the leader started
loading (``loading()``), not from when they joined: otherwise they would give up exactly
when their leader takes over.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from steadycache._runtime import AsyncEvent


class AsyncFlight:
    """One in-progress load, shared by its leader and its waiters."""

    __slots__ = ("_done", "error", "loading_since", "value")

    def __init__(self) -> None:
        self._done = AsyncEvent()
        self.value: Any = None
        self.error: BaseException | None = None
        self.loading_since = time.monotonic()

    def loading(self) -> None:
        """The leader starts its own load now: followers' waits count from here."""
        self.loading_since = time.monotonic()

    def succeed(self, value: Any) -> None:
        self.value = value
        self._done.set()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self._done.set()

    async def wait(self, timeout: float) -> bool:
        """Wait until the leader finishes; False after ``timeout`` of its loading."""
        joined = time.monotonic()
        while True:
            remaining = max(joined, self.loading_since) + timeout - time.monotonic()
            if remaining <= 0:
                return self._done.is_set()
            if await self._done.wait(remaining):
                return True


class AsyncFlightTable:
    """The flights of one namespace, keyed by stored key.

    The lock matters to threads only; with asyncio nothing awaits while it is held.
    """

    __slots__ = ("_flights", "_lock")

    def __init__(self) -> None:
        self._flights: dict[str, AsyncFlight] = {}
        self._lock = threading.Lock()

    def join(self, key: str) -> tuple[AsyncFlight, bool]:
        """The key's flight and whether the caller leads it (must then call ``land``)."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                return flight, False
            flight = self._flights[key] = AsyncFlight()
            return flight, True

    def land(self, key: str, flight: AsyncFlight) -> None:
        """Remove a finished flight so the next miss starts a new one."""
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]

    def in_flight(self, key: str) -> bool:
        """Whether a load of ``key`` is in progress."""
        return key in self._flights
