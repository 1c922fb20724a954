"""Origin limiters (``stampede/_async/origin.py``, and the generated sync twin)."""

from __future__ import annotations

from steadycache.stampede._async.origin import AsyncOriginLimiter
from steadycache.stampede._sync.origin import OriginLimiter

__all__ = ["AsyncOriginLimiter", "OriginLimiter"]
