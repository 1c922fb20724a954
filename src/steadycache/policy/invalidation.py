"""Decision 2, invalidation: the TTL backstop, the owner, and the events that invalidate."""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Final

from steadycache.errors import ConfigurationError
from steadycache.policy import checks
from steadycache.policy.checks import Duration, to_seconds


@dataclass(frozen=True, slots=True, init=False)
class Ttl:
    """Time to live: fresh for ``seconds``, each write's lifetime spread by ``jitter``.

    ``jitter`` is a fraction: 0.1 means each entry lives between 0.9x and 1.0x of the TTL,
    so entries written together do not expire together (the motivating incident).
    """

    seconds: float
    jitter: float

    def __init__(self, seconds: Duration, *, jitter: float = 0.1) -> None:
        object.__setattr__(
            self, "seconds", to_seconds(seconds, decision="invalidation", what="Ttl seconds")
        )
        object.__setattr__(
            self,
            "jitter",
            checks.fraction(jitter, decision="invalidation", what="Ttl jitter", high_open=True),
        )


def _template_fields(template: str, *, where: str) -> tuple[str, ...]:
    try:
        fields = tuple(name for _, name, _, _ in string.Formatter().parse(template) if name)
    except ValueError as exc:
        raise ConfigurationError("invalidation", f"{where} template {template!r}: {exc}") from exc
    for name in fields:
        if not name.isidentifier():
            raise ConfigurationError(
                "invalidation",
                f"{where} template {template!r}: field {name!r} must be a plain name",
            )
    return fields


@dataclass(frozen=True, slots=True, init=False)
class OnEvent:
    """A named event (from the invalidation bus, or a table change) and what it invalidates.

    ``keys`` and ``tags`` are templates filled from the event's payload: ``"hotel:{id}"``.
    A template that is exactly one field (``"{id}"``) passes the payload value through
    with its type, so an int id invalidates the int key. With neither, the event
    invalidates the whole namespace. A payload missing a field invalidates the whole
    namespace too (counted and logged): missing an invalidation is the worse failure.
    Keys work for namespaces without scope dimensions; scoped namespaces use tags.
    """

    event: str
    keys: tuple[str, ...]
    tags: tuple[str, ...]

    def __init__(
        self, event: str, *, keys: tuple[str, ...] = (), tags: tuple[str, ...] = ()
    ) -> None:
        if not isinstance(event, str) or not event.strip():
            raise ConfigurationError("invalidation", f"an event needs a name, got {event!r}")
        for what, templates in (("keys", keys), ("tags", tags)):
            if isinstance(templates, str) or not all(isinstance(t, str) for t in templates):
                raise ConfigurationError(
                    "invalidation", f"OnEvent({event!r}) {what} must be a tuple of templates"
                )
            for template in templates:
                _template_fields(template, where=f"OnEvent({event!r}) {what}")
        object.__setattr__(self, "event", event)
        object.__setattr__(self, "keys", tuple(keys))
        object.__setattr__(self, "tags", tuple(tags))

    @property
    def whole_namespace(self) -> bool:
        """Whether the event flushes the namespace rather than named keys or tags."""
        return not self.keys and not self.tags


TABLE_EVENT_PREFIX: Final = "table:"


@dataclass(frozen=True, slots=True, init=False)
class OnTableChange:
    """Rows of a database table whose change (by any code path) invalidates entries.

    The database-driven invalidators (PostgreSQL ``LISTEN/NOTIFY``, SQLite outbox) install
    triggers on ``table`` that report ``key_columns`` of every inserted, updated or deleted
    row (old and new values); ``keys``/``tags`` templates name those columns. A change
    becomes the event ``table:<table>`` with the columns as its payload.
    """

    table: str
    key_columns: tuple[str, ...]
    keys: tuple[str, ...]
    tags: tuple[str, ...]

    def __init__(
        self,
        table: str,
        *,
        key_columns: tuple[str, ...],
        keys: tuple[str, ...] = (),
        tags: tuple[str, ...] = (),
    ) -> None:
        if not isinstance(table, str) or not all(part.isidentifier() for part in table.split(".")):
            raise ConfigurationError(
                "invalidation", f"OnTableChange table must be a plain (schema.)name, got {table!r}"
            )
        if (
            isinstance(key_columns, str)
            or not key_columns
            or not all(isinstance(c, str) and c.isidentifier() for c in key_columns)
        ):
            raise ConfigurationError(
                "invalidation",
                f"OnTableChange({table!r}) key_columns must be a non-empty tuple of column "
                f"names, got {key_columns!r}",
            )
        rule = OnEvent(TABLE_EVENT_PREFIX + table, keys=keys, tags=tags)
        for template in (*rule.keys, *rule.tags):
            unknown = set(_template_fields(template, where=f"OnTableChange({table!r})")) - set(
                key_columns
            )
            if unknown:
                raise ConfigurationError(
                    "invalidation",
                    f"OnTableChange({table!r}) template {template!r} names "
                    f"{', '.join(sorted(unknown))}, which are not in key_columns",
                )
        object.__setattr__(self, "table", table)
        object.__setattr__(self, "key_columns", tuple(key_columns))
        object.__setattr__(self, "keys", rule.keys)
        object.__setattr__(self, "tags", rule.tags)

    @property
    def event(self) -> str:
        """The event name a change of this table is routed as."""
        return TABLE_EVENT_PREFIX + self.table

    @property
    def whole_namespace(self) -> bool:
        """Whether a change flushes the namespace rather than named keys or tags."""
        return not self.keys and not self.tags


Trigger = OnEvent | OnTableChange


@dataclass(frozen=True, slots=True, kw_only=True)
class Invalidation:
    """Who makes entries stop being served, and when. TTL is always the backstop.

    ``owner`` names the team or service answerable for this namespace's invalidation;
    ``triggers`` are the events (``OnEvent``) and table changes (``OnTableChange``) that
    invalidate it, routed by ``steadycache.invalidation`` (bus, PostgreSQL, SQLite).
    """

    ttl: Ttl = field(default_factory=lambda: Ttl(300))
    owner: str | None = None
    triggers: tuple[Trigger, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.ttl, Ttl):
            raise ConfigurationError("invalidation", f"ttl must be a Ttl, got {self.ttl!r}")
        if isinstance(self.triggers, OnEvent | OnTableChange):
            object.__setattr__(self, "triggers", (self.triggers,))
        if not isinstance(self.triggers, tuple | list) or not all(
            isinstance(t, OnEvent | OnTableChange) for t in self.triggers
        ):
            raise ConfigurationError(
                "invalidation", f"triggers must be OnEvent or OnTableChange, got {self.triggers!r}"
            )
        object.__setattr__(self, "triggers", tuple(self.triggers))
        checks.text(self.owner, decision="invalidation", what="Invalidation owner", optional=True)
        if self.triggers and not self.owner:
            raise ConfigurationError(
                "invalidation",
                "a namespace invalidated by events or table changes needs an owner "
                "(Invalidation(owner='team or service', triggers=...)): somebody answers for "
                "every path that changes the data",
            )
