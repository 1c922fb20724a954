"""Readiness: ready once warm-up reached its target, or its deadline passed.

A web framework's start-up hook waits on it (``cache.readiness.wait(timeout)``) and a
readiness probe reads ``is_ready``, so traffic arrives after the hot keys are loaded.
"""

from __future__ import annotations

import asyncio
import threading
import time


class Readiness:
    """Set when every registered warm-up has reached its target or deadline."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._pending = 0
        self._lock = threading.Lock()
        self._event.set()  # nothing to warm: ready
        self.loaded = 0
        self.target = 0

    def expect(self, target: int) -> None:
        """A warm-up of ``target`` keys starts."""
        with self._lock:
            self._pending += 1
            self.target += target
            self._event.clear()

    def progress(self, loaded: int = 1) -> None:
        """``loaded`` more keys are warm."""
        with self._lock:
            self.loaded += loaded

    def done(self) -> None:
        """A warm-up reached its target or its deadline."""
        with self._lock:
            self._pending -= 1
            if self._pending <= 0:
                self._event.set()

    @property
    def is_ready(self) -> bool:
        """Whether start-up traffic may arrive."""
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until ready; False when ``timeout`` passes first."""
        return self._event.wait(timeout)

    async def wait_async(self, timeout: float | None = None, poll: float = 0.01) -> bool:
        """``wait`` for asyncio code, without blocking the loop."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._event.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(poll)
        return True
