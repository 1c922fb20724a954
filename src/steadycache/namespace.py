"""``Namespace``: the threads' namespace, generated from ``_async/namespace.py``."""

from __future__ import annotations

from steadycache._sync.namespace import Namespace

__all__ = ["Namespace"]
