"""Routes named events to the namespaces whose policy declares them (``Invalidation.triggers``).

The invalidation bus (events between services) and the database-driven invalidators
(table changes) both end here: an event and its payload become key, tag or whole-namespace
invalidations of every namespace that declared a trigger for it. A payload that lacks a
field a template names cannot say which entries changed, so the whole namespace is
invalidated instead (counted and logged): a missed invalidation is the worse failure.
"""

from __future__ import annotations

import logging
import string
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from steadycache.errors import ConfigurationError
from steadycache.policy import OnEvent, OnTableChange, Policy, Trigger

logger = logging.getLogger("steadycache")


class InvalidationTarget(Protocol):
    """What the router invalidates: a sync ``Namespace`` satisfies it."""

    @property
    def name(self) -> str: ...

    @property
    def policy(self) -> Policy: ...

    def invalidate(self, key: Any, *, scope: Mapping[str, object] | None = None) -> bool: ...

    def invalidate_tag(self, tag: str) -> object: ...

    def invalidate_all(self) -> int: ...


@dataclass
class RouterCounters:
    """What the router did since it was made."""

    events: int = 0
    unrouted: int = 0
    keys: int = 0
    tags: int = 0
    flushes: int = 0
    missing_fields: int = 0
    failures: int = 0


def fill(template: str, payload: Mapping[str, object]) -> object:
    """The template filled from ``payload``; a lone ``{field}`` keeps the value's type.

    Raises ``KeyError`` naming the missing field.
    """
    parsed = list(string.Formatter().parse(template))
    if len(parsed) == 1 and parsed[0][0] == "" and parsed[0][1] and not parsed[0][2]:
        return payload[parsed[0][1]]
    return template.format_map(payload)


class EventRouter:
    """Maps events to the namespaces, keys and tags that declared them. Thread-safe."""

    def __init__(self, targets: Iterable[InvalidationTarget]) -> None:
        self._lock = threading.Lock()
        self._rules: dict[str, list[tuple[InvalidationTarget, Trigger]]] = {}
        self._tables: dict[str, tuple[str, ...]] = {}
        self.counters = RouterCounters()
        for target in targets:
            self.add(target)

    def add(self, target: InvalidationTarget) -> None:
        """Route the events ``target``'s policy declares to it."""
        triggers = target.policy.invalidation.triggers
        with self._lock:
            for trigger in triggers:
                if isinstance(trigger, OnTableChange):
                    known = self._tables.setdefault(trigger.table, trigger.key_columns)
                    if known != trigger.key_columns:
                        raise ConfigurationError(
                            "invalidation",
                            f"table {trigger.table!r} is declared with key_columns {known} and "
                            f"{trigger.key_columns} (namespace {target.name!r}); one table "
                            "reports one set of key columns",
                        )
                self._rules.setdefault(trigger.event, []).append((target, trigger))

    @property
    def events(self) -> frozenset[str]:
        """Every event some namespace declared."""
        with self._lock:
            return frozenset(self._rules)

    @property
    def tables(self) -> dict[str, tuple[str, ...]]:
        """Table -> key columns, for every ``OnTableChange`` declared."""
        with self._lock:
            return dict(self._tables)

    @property
    def targets(self) -> list[InvalidationTarget]:
        """Every namespace with at least one trigger, once each."""
        with self._lock:
            seen: dict[int, InvalidationTarget] = {}
            for rules in self._rules.values():
                for target, _ in rules:
                    seen.setdefault(id(target), target)
            return list(seen.values())

    def route(self, event: str, payload: Mapping[str, object]) -> int:
        """Invalidate what ``event`` names; how many namespaces it touched."""
        with self._lock:
            rules = list(self._rules.get(event, ()))
        self.counters.events += 1
        if not rules:
            self.counters.unrouted += 1
            return 0
        for target, trigger in rules:
            self._apply(target, trigger, payload)
        return len(rules)

    def flush_event(self, event: str, reason: str) -> int:
        """Flush every namespace that declared ``event`` (a change that names no rows)."""
        with self._lock:
            targets = {id(target): target for target, _ in self._rules.get(event, ())}
        for target in targets.values():
            self._flush(target, reason)
        return len(targets)

    def invalidate_everything(self, reason: str) -> int:
        """Flush every namespace with a trigger (after notifications may have been lost)."""
        targets = self.targets
        for target in targets:
            self._flush(target, reason)
        return len(targets)

    def _apply(
        self,
        target: InvalidationTarget,
        trigger: OnEvent | OnTableChange,
        payload: Mapping[str, object],
    ) -> None:
        if trigger.whole_namespace:
            self._flush(target, f"event {trigger.event}")
            return
        try:
            keys = [fill(template, payload) for template in trigger.keys]
            tags = [str(fill(template, payload)) for template in trigger.tags]
        except (KeyError, IndexError, ValueError) as exc:
            self.counters.missing_fields += 1
            logger.warning(
                "event %s for namespace %s lacks payload field %s: invalidating the whole "
                "namespace instead",
                trigger.event,
                target.name,
                exc,
            )
            self._flush(target, f"event {trigger.event} without field {exc}")
            return
        try:
            for key in keys:
                target.invalidate(key)
                self.counters.keys += 1
            for tag in tags:
                target.invalidate_tag(tag)
                self.counters.tags += 1
        except Exception:
            self.counters.failures += 1
            logger.exception(
                "invalidating namespace %s for event %s failed", target.name, trigger.event
            )
            raise

    def _flush(self, target: InvalidationTarget, reason: str) -> None:
        try:
            target.invalidate_all()
            self.counters.flushes += 1
            logger.info("namespace %s invalidated entirely (%s)", target.name, reason)
        except Exception:
            self.counters.failures += 1
            logger.exception("invalidating namespace %s (%s) failed", target.name, reason)
            raise
