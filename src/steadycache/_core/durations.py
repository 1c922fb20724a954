"""Durations, as the pure core sees them: the policy package's validator, re-exported."""

from __future__ import annotations

from steadycache.policy.checks import MAX_DURATION_SECONDS, Duration, to_seconds

__all__ = ["MAX_DURATION_SECONDS", "Duration", "to_seconds"]
