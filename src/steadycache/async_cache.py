"""``AsyncCache``: the asyncio facade (``_async/cache.py``)."""

from __future__ import annotations

from steadycache._async.cache import AsyncCache

__all__ = ["AsyncCache"]
