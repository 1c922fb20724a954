"""Validators for decision values, written once: each returns the normalised value or
raises ``ConfigurationError`` naming the decision and the field.

A wrong *type* is a configuration mistake like a wrong value, so it gets the same error
(never a bare ``TypeError`` from comparing a string with a number). ``bool`` is refused
where a number is expected (``True`` is an ``int``, but ``max_entries=True`` is a bug),
and only a real ``bool`` is accepted where a flag is expected (``"no"`` is truthy).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import timedelta
from typing import Final, TypeVar

from steadycache.errors import ConfigurationError

Duration = float | int | timedelta
T = TypeVar("T")

#: The longest duration any decision accepts: ten years. Longer is not a cache lifetime but
#: a mistake (``ttl=1e300``), and Redis refuses expiry times that far out.
MAX_DURATION_SECONDS: Final = 10 * 365 * 24 * 3600.0


def duration(value: object, *, decision: str, what: str, allow_zero: bool = False) -> float:
    """Seconds (int/float) or a ``timedelta``, as float seconds in (0, 10 years]."""
    if isinstance(value, bool) or not isinstance(value, int | float | timedelta):
        raise ConfigurationError(
            decision, f"{what} must be seconds or a timedelta, got {type(value).__name__}"
        )
    try:
        seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    except OverflowError:  # an int too large for a float
        seconds = math.inf
    if math.isnan(seconds) or math.isinf(seconds):
        raise ConfigurationError(decision, f"{what} must be finite, got {value!r}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "positive"
        raise ConfigurationError(decision, f"{what} must be {bound}, got {seconds}")
    if seconds > MAX_DURATION_SECONDS:
        raise ConfigurationError(
            decision,
            f"{what} must be at most 10 years ({MAX_DURATION_SECONDS:.0f}s), got {seconds}",
        )
    return seconds


def integer(value: object, *, decision: str, what: str, minimum: int = 1) -> int:
    """An ``int`` (not a ``bool``) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ConfigurationError(decision, f"{what} must be {kind}, got {value!r}")
    return value


def number(
    value: object,
    *,
    decision: str,
    what: str,
    low: float,
    high: float,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A real number (int or float, not bool) within the bounds, as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(
            decision, f"{what} must be a number, got {type(value).__name__} {value!r}"
        )
    result = float(value)
    above = result > low if low_open else result >= low
    below = result < high if high_open else result <= high
    if math.isnan(result) or not (above and below):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ConfigurationError(decision, f"{what} must be in {interval}, got {value!r}")
    return result


def fraction(
    value: object, *, decision: str, what: str, low_open: bool = False, high_open: bool = False
) -> float:
    """A number in [0, 1] (ends open as asked)."""
    return number(
        value,
        decision=decision,
        what=what,
        low=0.0,
        high=1.0,
        low_open=low_open,
        high_open=high_open,
    )


def flag(value: object, *, decision: str, what: str) -> bool:
    """A real ``bool``: ``"no"`` or ``0`` would silently mean something else."""
    if not isinstance(value, bool):
        raise ConfigurationError(
            decision, f"{what} must be True or False, got {type(value).__name__} {value!r}"
        )
    return value


def one_of(value: T, choices: Iterable[T], *, decision: str, what: str) -> T:
    """``value`` if it is one of ``choices`` (compared by equality, any type refused)."""
    options = tuple(choices)
    if not isinstance(value, str | int) or isinstance(value, bool) or value not in options:
        listed = ", ".join(repr(option) for option in options)
        raise ConfigurationError(decision, f"{what} must be one of {listed}, got {value!r}")
    return value


def text(value: object, *, decision: str, what: str, optional: bool = False) -> str | None:
    """A non-blank ``str`` (or None when ``optional``)."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        kind = "a non-empty str or None" if optional else "a non-empty str"
        raise ConfigurationError(decision, f"{what} must be {kind}, got {value!r}")
    return value


#: Every public duration accepts seconds or a timedelta, normalised once by this.
to_seconds = duration
