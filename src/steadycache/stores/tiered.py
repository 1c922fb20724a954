"""``TieredStore`` (generated from ``stores/_async/tiered.py``): L1 in front of Redis."""

from __future__ import annotations

from steadycache.stores._sync.tiered import TieredStore, local_copy

__all__ = ["TieredStore", "local_copy"]
