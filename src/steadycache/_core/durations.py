"""Durations: every public duration accepts seconds (int/float) or a ``timedelta``.

``to_seconds`` normalises one once, at construction, naming the decision; it is the
``duration`` validator of ``checks.py`` (bounded to ten years), under its historic name.
"""

from __future__ import annotations

from steadycache._core.checks import MAX_DURATION_SECONDS, Duration
from steadycache._core.checks import duration as to_seconds

__all__ = ["MAX_DURATION_SECONDS", "Duration", "to_seconds"]
