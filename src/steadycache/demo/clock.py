"""A compressed clock: simulated seconds run ``speed`` times faster than real ones.

The cache reads this clock for every freshness decision and for the load cost it records,
so a 60 s TTL lasts 60/speed real seconds while the database and its pool keep real
time. That is what lets one run reproduce an expiry under load in seconds, with real
queries: only the waiting between events is compressed, never the work.
"""

from __future__ import annotations

import time


class CompressedClock:
    """Simulated time starting at 0, advancing ``speed`` simulated seconds per real second."""

    def __init__(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError(f"clock speed must be positive, got {speed!r}")
        self.speed = speed
        self.origin = time.perf_counter()

    def __call__(self) -> float:
        return (time.perf_counter() - self.origin) * self.speed

    def simulated(self, real: float) -> float:
        """The simulated time at the ``time.perf_counter()`` instant ``real``."""
        return (real - self.origin) * self.speed

    def sleep_until(self, simulated: float) -> None:
        """Sleep (really) until the clock reads ``simulated``."""
        delay = (simulated - self()) / self.speed
        if delay > 0:
            time.sleep(delay)
