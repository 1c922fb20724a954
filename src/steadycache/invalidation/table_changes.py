"""What the database-driven invalidators share: a reported table change, how it is routed,
and the checks they make before installing triggers (PostgreSQL ``NOTIFY``, SQLite outbox)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from steadycache.errors import ConfigurationError, UsageError
from steadycache.invalidation.router import EventRouter, InvalidationTarget
from steadycache.policy import TABLE_EVENT_PREFIX


class NamespaceSource(Protocol):
    """Anything that lists its namespaces, like ``steadycache.Cache``."""

    def namespaces(self) -> Mapping[str, InvalidationTarget]: ...


@dataclass(frozen=True, slots=True)
class TableChange:
    """One reported change: the key columns of the rows touched, or ``None`` for all of them."""

    table: str
    op: str
    rows: tuple[Mapping[str, object], ...] | None

    @classmethod
    def from_json(cls, text: str) -> TableChange:
        """Read a trigger's payload; ``ValueError`` when it is not one."""
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("table"), str):
            raise ValueError(f"not a table change: {text[:200]!r}")
        op = str(data.get("op", ""))
        if op == "TRUNCATE" or data.get("overflow"):
            return cls(data["table"], op, None)
        rows = data.get("rows")
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise ValueError(f"table change without rows: {text[:200]!r}")
        return cls(data["table"], op, tuple(rows))


def resolve_router(source: EventRouter | NamespaceSource) -> EventRouter:
    """``source`` itself, or a router over the namespaces it holds now."""
    if isinstance(source, EventRouter):
        router = source
    else:
        namespaces = getattr(source, "namespaces", None)
        if not callable(namespaces):
            raise UsageError(
                f"expected an EventRouter or a Cache (something with namespaces()), got {source!r}"
            )
        router = EventRouter(namespaces().values())
    if not router.tables:
        raise ConfigurationError(
            "invalidation",
            "no namespace declares OnTableChange: create the namespaces (with "
            "Invalidation(triggers=(OnTableChange(...),))) before the database invalidator",
        )
    return router


def route_change(router: EventRouter, change: TableChange) -> int:
    """Invalidate what ``change`` names; a change without rows flushes the table's
    namespaces. Returns how many namespaces were flushed that way."""
    event = TABLE_EVENT_PREFIX + change.table
    if change.rows is None:
        return router.flush_event(event, f"{change.op or 'change'} of table {change.table}")
    for row in change.rows:
        router.route(event, row)
    return 0


def may_hold_entries(router: EventRouter) -> bool:
    """Whether any routed namespace may hold entries; True when it cannot say (shared tiers)."""
    for target in router.targets:
        stats = getattr(target, "stats", None)
        if not callable(stats):
            return True
        try:
            tiers = stats().tiers
        except Exception:  # not knowing means "maybe"
            return True
        # A shared tier cannot count (None): other processes may have filled it.
        if not tiers or any(tier.entries is None or tier.entries > 0 for tier in tiers):
            return True
    return False


def check_key_columns(table: str, present: Iterable[str] | None, columns: tuple[str, ...]) -> None:
    """Refuse a table that does not exist (``present`` is None) or lacks a key column: a
    trigger would report null for it and the router would delete the wrong key."""
    if present is None:
        raise ConfigurationError(
            "invalidation", f"OnTableChange table {table!r} does not exist in the database"
        )
    missing = sorted(set(columns) - set(present))
    if missing:
        raise ConfigurationError(
            "invalidation",
            f"OnTableChange({table!r}) key_columns {', '.join(missing)} are not columns "
            "of the table",
        )
