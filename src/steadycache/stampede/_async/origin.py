"""The origin limiter: a namespace's budget of concurrent loads, plus a circuit breaker.

The database behind a namespace has a connection pool; the limiter keeps the cache from
ever asking for more than its share. A load waits at most ``queue_timeout`` for a slot.
Consecutive loader failures open the breaker: loads then fail fast for ``breaker_reset``
seconds, after which one trial load is let through (half-open) to test the origin.
"""

from __future__ import annotations

from collections.abc import Callable

from steadycache._core.breaker import CircuitBreaker
from steadycache._runtime import AsyncSemaphore
from steadycache.errors import OriginOverloaded
from steadycache.policy import OriginLimit


class AsyncOriginLimiter:
    """Slots for loads. Use ``acquire``/``release`` around each loader call."""

    def __init__(self, namespace: str, limit: OriginLimit, clock: Callable[[], float]) -> None:
        self._namespace = namespace
        self._limit = limit
        self._slots = AsyncSemaphore(limit.max_concurrent)
        self.breaker = CircuitBreaker(limit.breaker_failures, limit.breaker_reset, clock)
        self.rejections = 0

    async def acquire(self) -> None:
        """Take a slot or raise ``OriginOverloaded`` (budget exhausted or breaker open)."""
        if not self.breaker.allow():
            self.rejections += 1
            raise OriginOverloaded(
                f"namespace {self._namespace!r}: circuit breaker open after "
                f"{self._limit.breaker_failures} consecutive loader failures"
            )
        if not await self._slots.acquire(self._limit.queue_timeout):
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
