"""``AsyncNamespace``: the asyncio namespace (``_async/namespace.py``)."""

from __future__ import annotations

from steadycache._async.namespace import AsyncNamespace

__all__ = ["AsyncNamespace"]
