"""A circuit breaker over an injected clock: used by the origin limiter and by shared stores."""

from __future__ import annotations

import threading
from collections.abc import Callable


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
