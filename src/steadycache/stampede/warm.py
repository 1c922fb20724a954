"""Warm-up's bookkeeping: progress towards the goal, and the report.

The warm-up itself (``run_warm_up`` / ``run_warm_up_async``) is in ``_async/warm.py``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from steadycache.stampede.readiness import Readiness


@dataclass(frozen=True, slots=True)
class WarmReport:
    """What ``warm()`` did: keys asked for, loaded, failed, and whether the deadline hit."""

    requested: int
    loaded: int
    failed: int
    deadline_reached: bool
    seconds: float


class WarmProgress:
    """Counts one warm-up's loads; tells ``Readiness`` once ``goal`` keys are warm."""

    def __init__(self, goal: int, readiness: Readiness) -> None:
        self._goal = goal
        self._readiness = readiness
        self._lock = threading.Lock()
        self._signalled = False
        self.loaded_count = 0
        self.failed_count = 0
        readiness.expect(goal)

    def loaded(self) -> None:
        self._readiness.progress()
        with self._lock:
            self.loaded_count += 1
            if self.loaded_count >= self._goal:
                self._signal()

    def failed(self) -> None:
        with self._lock:
            self.failed_count += 1

    def _signal(self) -> None:
        if not self._signalled:
            self._signalled = True
            self._readiness.done()

    def report(self, requested: int, deadline: float, seconds: float) -> WarmReport:
        """The warm-up is over (done or out of time): readiness is told either way."""
        with self._lock:
            self._signal()
            return WarmReport(
                requested=requested,
                loaded=self.loaded_count,
                failed=self.failed_count,
                deadline_reached=seconds >= deadline,
                seconds=seconds,
            )
