"""The origin limiter: a namespace's budget of concurrent loads, plus a circuit breaker.

The database behind a namespace has a connection pool; the limiter keeps the cache from
ever asking for more than its share. A load waits at most ``queue_timeout`` for a slot.
Consecutive loader failures open the breaker: loads then fail fast for ``breaker_reset``
seconds, after which one trial load is let through (half-open) to test the origin.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from steadycache.errors import OriginOverloaded
from steadycache.policy import OriginLimit


class CircuitBreaker:
    """Counts consecutive failures; open for ``reset`` seconds after ``threshold`` of them."""

    __slots__ = ("_clock", "_failures", "_lock", "_open_until", "_reset", "_threshold", "_trial")

    def __init__(self, threshold: int, reset: float, clock: Callable[[], float]) -> None:
        self._threshold = threshold
        self._reset = reset
        self._clock = clock
        self._failures = 0
        self._open_until = 0.0
        self._trial = False
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """Whether a load may start now (one trial at a time once the reset has passed)."""
        with self._lock:
            if self._failures < self._threshold:
                return True
            if self._clock() < self._open_until or self._trial:
                return False
            self._trial = True
            return True

    def record(self, *, failed: bool) -> None:
        """The outcome of a load that ``allow`` let through."""
        with self._lock:
            self._trial = False
            if not failed:
                self._failures = 0
                return
            self._failures += 1
            if self._failures >= self._threshold:
                self._open_until = self._clock() + self._reset

    def cancel_trial(self) -> None:
        """A load that ``allow`` let through never ran (no slot): no outcome to record."""
        with self._lock:
            self._trial = False

    @property
    def is_open(self) -> bool:
        """Whether loads are currently refused."""
        with self._lock:
            return self._failures >= self._threshold and self._clock() < self._open_until


class OriginLimiter:
    """Slots for loads (threads). Use ``acquire``/``release`` around each loader call."""

    def __init__(self, namespace: str, limit: OriginLimit, clock: Callable[[], float]) -> None:
        self._namespace = namespace
        self._limit = limit
        self._slots = threading.BoundedSemaphore(limit.max_concurrent)
        self.breaker = CircuitBreaker(limit.breaker_failures, limit.breaker_reset, clock)
        self.rejections = 0

    def acquire(self) -> None:
        """Take a slot or raise ``OriginOverloaded`` (budget exhausted or breaker open)."""
        if not self.breaker.allow():
            self.rejections += 1
            raise OriginOverloaded(
                f"namespace {self._namespace!r}: circuit breaker open after "
                f"{self._limit.breaker_failures} consecutive loader failures"
            )
        if not self._slots.acquire(timeout=self._limit.queue_timeout):
            self.breaker.cancel_trial()
            self.rejections += 1
            raise OriginOverloaded(
                f"namespace {self._namespace!r}: {self._limit.max_concurrent} loads already "
                f"running and no slot freed within {self._limit.queue_timeout:g}s"
            )

    def release(self, *, failed: bool) -> None:
        """Return the slot and report the load's outcome to the breaker."""
        self._slots.release()
        self.breaker.record(failed=failed)


class AsyncOriginLimiter:
    """Slots for loads (asyncio), same rules as ``OriginLimiter``."""

    def __init__(self, namespace: str, limit: OriginLimit, clock: Callable[[], float]) -> None:
        self._namespace = namespace
        self._limit = limit
        self._slots = asyncio.Semaphore(limit.max_concurrent)
        self.breaker = CircuitBreaker(limit.breaker_failures, limit.breaker_reset, clock)
        self.rejections = 0

    async def acquire(self) -> None:
        """Take a slot or raise ``OriginOverloaded``."""
        if not self.breaker.allow():
            self.rejections += 1
            raise OriginOverloaded(
                f"namespace {self._namespace!r}: circuit breaker open after "
                f"{self._limit.breaker_failures} consecutive loader failures"
            )
        try:
            await asyncio.wait_for(self._slots.acquire(), self._limit.queue_timeout)
        except TimeoutError:
            self.breaker.cancel_trial()
            self.rejections += 1
            raise OriginOverloaded(
                f"namespace {self._namespace!r}: {self._limit.max_concurrent} loads already "
                f"running and no slot freed within {self._limit.queue_timeout:g}s"
            ) from None

    def release(self, *, failed: bool) -> None:
        """Return the slot and report the load's outcome to the breaker."""
        self._slots.release()
        self.breaker.record(failed=failed)
