"""Refresh-ahead bookkeeping: which keys are hot and when each is due for a reload.

Pure bookkeeping (no threads, no I/O): the facades record reads and loads here, and a
background worker asks ``due(now)`` for the keys to reload. A key is hot while it was read
within ``hot_window``; a key that goes cold is forgotten and left to expire, so the worker
never keeps reloading what nobody reads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from steadycache.policy import RefreshAhead


@dataclass(slots=True)
class Tracked:
    """A key the worker may refresh: how to load it and when."""

    loader: Callable[[], Any]
    ttl: float | None
    tags: tuple[str, ...]
    refresh_at: float
    last_read: float
    #: ``stored_at`` of the newest entry seen: a refresh skips if the store has a newer one.
    stored_at: float = float("-inf")


class RefreshSchedule:
    """Hot keys of one namespace and their refresh times (thread-safe)."""

    def __init__(self, policy: RefreshAhead, default_ttl: float, max_keys: int) -> None:
        self._at = policy.at
        self._hot_window = policy.hot_window if policy.hot_window is not None else default_ttl
        self._max_keys = max_keys
        self._tracked: dict[str, Tracked] = {}
        self._lock = threading.Lock()

    def read(
        self,
        stored_key: str,
        loader: Callable[[], Any],
        ttl: float | None,
        tags: tuple[str, ...],
        now: float,
        lifetime: tuple[float, float] | None = None,
    ) -> None:
        """A read-through read of ``stored_key`` (keeps it hot, remembers its loader).

        ``lifetime`` is ``(stored_at, fresh_until)`` of the entry the read found, so a key
        first written by someone else (``set``, another process) is scheduled too.
        """
        tracked = self._tracked.get(stored_key)
        if tracked is not None:
            tracked.last_read = now
            tracked.loader = loader
            return
        refresh_at = float("inf")  # not in the store: scheduled when its load lands
        stored_at = float("-inf")
        if lifetime is not None:
            stored_at, fresh_until = lifetime
            refresh_at = stored_at + self._at * (fresh_until - stored_at)
        with self._lock:
            if len(self._tracked) < self._max_keys:
                self._tracked[stored_key] = Tracked(loader, ttl, tags, refresh_at, now, stored_at)

    def loaded(self, stored_key: str, stored_at: float, fresh_until: float) -> None:
        """A load stored a new entry: schedule its next refresh at ``at`` of its lifetime."""
        tracked = self._tracked.get(stored_key)
        if tracked is not None:
            tracked.refresh_at = stored_at + self._at * (fresh_until - stored_at)
            tracked.stored_at = stored_at

    def retry(self, stored_key: str, at: float) -> None:
        """A background reload failed: try again at ``at`` (if the key is still hot)."""
        tracked = self._tracked.get(stored_key)
        if tracked is not None:
            tracked.refresh_at = at

    def due(self, now: float) -> list[tuple[str, Tracked]]:
        """Hot keys whose refresh time has come; cold keys are dropped."""
        with self._lock:
            cold = [k for k, t in self._tracked.items() if now - t.last_read > self._hot_window]
            for key in cold:
                del self._tracked[key]
            ready = [(k, t) for k, t in self._tracked.items() if now >= t.refresh_at]
            for _, tracked in ready:
                # Not again until the reload lands and reschedules it.
                tracked.refresh_at = float("inf")
            return ready

    def __len__(self) -> int:
        return len(self._tracked)
