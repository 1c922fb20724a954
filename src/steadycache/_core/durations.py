"""Durations: every public duration accepts seconds (int/float) or a ``timedelta``."""

from __future__ import annotations

import math
from datetime import timedelta

from steadycache.errors import ConfigurationError

Duration = float | int | timedelta


def to_seconds(value: Duration, *, decision: str, what: str, allow_zero: bool = False) -> float:
    """Normalise a duration to float seconds once, at construction, naming the decision."""
    if isinstance(value, bool) or not isinstance(value, int | float | timedelta):
        raise ConfigurationError(
            decision, f"{what} must be seconds or a timedelta, got {type(value).__name__}"
        )
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if math.isnan(seconds) or math.isinf(seconds):
        raise ConfigurationError(decision, f"{what} must be finite, got {seconds}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "positive"
        raise ConfigurationError(decision, f"{what} must be {bound}, got {seconds}")
    return seconds
