"""Control-flow signals shared by the sync and async namespaces; never seen by callers."""

from __future__ import annotations

from typing import Any

from steadycache._core.durations import Duration


class RefreshSkipped(Exception):  # noqa: N818 - control flow, never escapes the namespace
    """A background refresh found another process's lease and left the key to it."""


class ServedStale(Exception):  # noqa: N818 - control flow, never escapes the namespace
    """Raised inside a load when the soft timeout answered the caller with stale."""

    def __init__(self, value: Any) -> None:
        super().__init__("served stale after the soft timeout")
        self.value = value


def ttl_seconds(ttl: Duration | None) -> float | None:
    """A per-call TTL override in seconds, as the refresh schedule keeps it."""
    if ttl is None:
        return None
    return ttl.total_seconds() if hasattr(ttl, "total_seconds") else float(ttl)
