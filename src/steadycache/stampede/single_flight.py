"""Single-flight: concurrent loads of one key share one loader call.

The first caller for a key becomes the leader and loads; later callers find its flight and
wait for the outcome, bounded by ``SingleFlight.wait_timeout``. One implementation for
threads (``FlightTable``) and one for asyncio (``AsyncFlightTable``), same shape.

A leader may first wait for another process's fleet lease before it loads itself (that
process crashed, say). Its followers' wait then counts from when the leader started
loading (``loading()``), not from when they joined: otherwise they would give up exactly
when their leader takes over.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any


class Flight:
    """One in-progress load, shared by its leader and its waiters (threads)."""

    __slots__ = ("_done", "error", "loading_since", "value")

    def __init__(self) -> None:
        self._done = threading.Event()
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

    def wait(self, timeout: float) -> bool:
        """Block until the leader finishes; False after ``timeout`` of its loading."""
        joined = time.monotonic()
        while True:
            remaining = max(joined, self.loading_since) + timeout - time.monotonic()
            if remaining <= 0:
                return self._done.is_set()
            if self._done.wait(remaining):
                return True


class FlightTable:
    """The flights of one namespace, keyed by stored key (threads)."""

    __slots__ = ("_flights", "_lock")

    def __init__(self) -> None:
        self._flights: dict[str, Flight] = {}
        self._lock = threading.Lock()

    def join(self, key: str) -> tuple[Flight, bool]:
        """The key's flight and whether the caller leads it (must then call ``land``)."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                return flight, False
            flight = self._flights[key] = Flight()
            return flight, True

    def land(self, key: str, flight: Flight) -> None:
        """Remove a finished flight so the next miss starts a new one."""
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]

    def in_flight(self, key: str) -> bool:
        """Whether a load of ``key`` is in progress."""
        return key in self._flights


class AsyncFlight:
    """One in-progress load shared by coroutines of one event loop."""

    __slots__ = ("_done", "error", "loading_since", "value")

    def __init__(self) -> None:
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.value: Any = None
        self.error: BaseException | None = None
        self.loading_since = time.monotonic()

    def loading(self) -> None:
        """The leader starts its own load now: followers' waits count from here."""
        self.loading_since = time.monotonic()

    def succeed(self, value: Any) -> None:
        self.value = value
        if not self._done.done():
            self._done.set_result(None)

    def fail(self, error: BaseException) -> None:
        self.error = error
        if not self._done.done():
            self._done.set_result(None)

    async def wait(self, timeout: float) -> bool:
        """Wait until the leader finishes; False on timeout.

        A timer and a future per waiter, not ``asyncio.wait_for``: that creates a task per
        waiter, and waking 500 tasks costs tens of milliseconds on a small machine.
        """
        if self._done.done():
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        joined = time.monotonic()
        timer: asyncio.TimerHandle | None = None

        def wake(_: object = None) -> None:
            nonlocal timer
            if waiter.done():
                return
            remaining = max(joined, self.loading_since) + timeout - time.monotonic()
            if self._done.done() or remaining <= 0:
                waiter.set_result(self._done.done())
            else:  # the leader started loading after we joined: wait for that load
                timer = loop.call_later(remaining, wake)

        self._done.add_done_callback(wake)
        timer = loop.call_later(timeout, wake)
        try:
            return await waiter
        finally:
            if timer is not None:
                timer.cancel()
            self._done.remove_done_callback(wake)


class AsyncFlightTable:
    """The flights of one namespace for asyncio (no lock: one loop, no await inside)."""

    __slots__ = ("_flights",)

    def __init__(self) -> None:
        self._flights: dict[str, AsyncFlight] = {}

    def join(self, key: str) -> tuple[AsyncFlight, bool]:
        flight = self._flights.get(key)
        if flight is not None:
            return flight, False
        flight = self._flights[key] = AsyncFlight()
        return flight, True

    def land(self, key: str, flight: AsyncFlight) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]

    def in_flight(self, key: str) -> bool:
        return key in self._flights
