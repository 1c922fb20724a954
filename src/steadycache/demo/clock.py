"""A compressed clock: simulated seconds run ``speed`` times faster than real ones.

The cache reads this clock for every freshness decision and for the load cost it records,
so a 60 s TTL lasts 60/speed real seconds while the database and its pool keep real
time. That is what lets one run reproduce an expiry under load in seconds, with real
queries: only the waiting between events is compressed, never the work.

A fleet run needs one clock in several processes, and a Redis tier that reads it as Unix
time (entries go to Redis with ``PXAT stale_until``): ``anchored`` starts the simulated
time at the current Unix time, and ``joining`` rebuilds that same clock in another process.
"""

from __future__ import annotations

import time


class CompressedClock:
    """Simulated time starting at ``epoch`` (0 unless anchored), ``speed`` x real time."""

    def __init__(self, speed: float, *, epoch: float = 0.0, origin: float | None = None) -> None:
        if speed <= 0:
            raise ValueError(f"clock speed must be positive, got {speed!r}")
        self.speed = speed
        #: What the clock reads at ``origin``.
        self.epoch = epoch
        #: The ``time.perf_counter()`` instant the simulated time started.
        self.origin = time.perf_counter() if origin is None else origin

    @classmethod
    def anchored(cls, speed: float) -> CompressedClock:
        """A clock that reads the current Unix time now and then runs ``speed`` x faster.

        A Redis tier sets ``PXAT stale_until`` from the cache's clock: a clock starting at
        0 would write expiries in 1970 and Redis would drop every entry on arrival. Ahead
        of real time, entries stay in Redis longer than simulated, which is harmless: the
        cache decides freshness from the entry's own times, and the demo deletes its keys.
        """
        return cls(speed, epoch=time.time())

    @classmethod
    def joining(cls, speed: float, epoch: float) -> CompressedClock:
        """The anchored clock that started at Unix time ``epoch``, in this process.

        ``perf_counter`` instants mean nothing across processes; Unix time does, so the
        origin is placed by how long ago ``epoch`` was, then this process runs on its own
        monotonic counter.
        """
        return cls(speed, epoch=epoch, origin=time.perf_counter() - (time.time() - epoch))

    def __call__(self) -> float:
        return self.epoch + (time.perf_counter() - self.origin) * self.speed

    def reading_at(self, real: float) -> float:
        """What the clock read at the ``time.perf_counter()`` instant ``real``."""
        return self.epoch + (real - self.origin) * self.speed

    def simulated(self, real: float) -> float:
        """Simulated seconds since the start at the ``time.perf_counter()`` instant ``real``."""
        return (real - self.origin) * self.speed

    def since_start(self, reading: float) -> float:
        """A reading of this clock as simulated seconds since its start."""
        return reading - self.epoch

    def sleep_until(self, reading: float) -> None:
        """Sleep (really) until the clock reads ``reading``."""
        delay = (reading - self()) / self.speed
        if delay > 0:
            time.sleep(delay)
