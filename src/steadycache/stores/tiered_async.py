"""``AsyncTieredStore`` (``stores/_async/tiered.py``): L1 in front of Redis, for asyncio."""

from __future__ import annotations

from steadycache.stores._async.tiered import AsyncTieredStore

__all__ = ["AsyncTieredStore"]
