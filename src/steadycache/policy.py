"""The ten decisions of a production cache, one value object each, held by a frozen ``Policy``.

Every decision is explicit or defaulted, and the ``Policy`` remembers which (the audit reads
``Policy.explicit``). Invalid values and contradictions between decisions raise
``ConfigurationError`` at construction, naming the decision and the reason. A decision
whose machinery is not in this release raises ``NotAvailableYetError`` instead of being
silently ignored.

=====  ===================  ===========================================================
 #     decision             value objects
=====  ===================  ===========================================================
 1     ``pattern``          ``CacheAside()``, ``ReadThrough()``, ``WriteThrough()``,
                           ``WriteBehind(journal="sqlite", sqlite_path=...)``
 2     ``invalidation``     ``Invalidation(ttl=Ttl(60, jitter=0.1), owner=..., triggers=...)``
 3     ``stampede``         ``Stampede(single_flight=..., early_refresh=..., ...)``
 4     ``sensitivity``      ``Sensitivity.PUBLIC``, ``.PERSONAL``, ``.transactional(...)``
 5     ``eviction``         ``Eviction(policy="s3fifo", max_entries=..., max_bytes=...)``
 6     ``warm_up``          ``NoWarmUp()``
 7     ``consistency``      ``LocalOnly()``
 8     ``security``         ``Security(scope=Scope("user_id"), hash_keys=True, codec=...)``
 9     ``observability``    ``Observability(metrics=True, rolling_window=60)``
 10    ``sizing``           ``Sizing(max_value_bytes=1 MiB)``
=====  ===================  ===========================================================
"""

from __future__ import annotations

import enum
import string
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from steadycache._core import checks
from steadycache._core.durations import Duration, to_seconds
from steadycache.errors import ConfigurationError
from steadycache.stampede.decisions import (
    EarlyRefresh,
    LoaderTimeouts,
    OriginLimit,
    RefreshAhead,
    SingleFlight,
    StaleIfError,
    StaleWhileRevalidate,
    Stampede,
)

__all__ = [
    "CacheAside",
    "Consistency",
    "EarlyRefresh",
    "Eviction",
    "HotKeyWarmUp",
    "Invalidation",
    "LoaderTimeouts",
    "LocalOnly",
    "NoWarmUp",
    "Observability",
    "OnEvent",
    "OnTableChange",
    "OriginLimit",
    "Pattern",
    "Policy",
    "ReadThrough",
    "RefreshAhead",
    "Scope",
    "Security",
    "Sensitivity",
    "SensitivityClass",
    "SharedTiers",
    "SingleFlight",
    "Sizing",
    "StaleIfError",
    "StaleWhileRevalidate",
    "Stampede",
    "Trigger",
    "Ttl",
    "WarmUp",
    "WriteBehind",
    "WriteThrough",
]


# --- 1. caching pattern -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CacheAside:
    """The caller reads the cache, loads on a miss and writes the cache itself."""

    name: ClassVar[str] = "cache-aside"


@dataclass(frozen=True, slots=True)
class ReadThrough:
    """The cache calls the namespace's loader on a miss (``get_or_load``, ``@cached``)."""

    name: ClassVar[str] = "read-through"


JOURNALS: Final = ("sqlite", "redis")


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteThrough:
    """``Namespace.write`` calls the writer (the source of truth) first, then the cache.

    ``on_write="invalidate"`` (the default, the safe one) deletes the entry so the next
    read loads what the source now holds; ``"update"`` stores the written value, with a
    version newer than any load already in flight, so a concurrent reader's older load
    cannot put back the previous value.
    """

    name: ClassVar[str] = "write-through"
    on_write: str = "invalidate"

    def __post_init__(self) -> None:
        checks.one_of(
            self.on_write,
            ("invalidate", "update"),
            decision="pattern",
            what="WriteThrough on_write",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteBehind:
    """``Namespace.write`` updates the cache and a durable journal; a flusher applies the
    journal to the source later, with retries, backoff, coalescing and idempotency keys.

    - ``journal``: ``"sqlite"`` (a local file, ``sqlite_path``; fsynced before a write is
      acknowledged) or ``"redis"`` (a Redis Stream with a consumer group, on the cache's
      Redis; refused when that server cannot keep it, see ``accept_loss``).
    - ``max_attempts``: a write that failed this many times goes to the dead-letter stream.
    - ``accept_loss``: who accepted, and why, that acknowledged writes may be lost (a Redis
      without AOF or replicas loses the journal in a restart). Without it such a journal is
      refused.
    """

    name: ClassVar[str] = "write-behind"
    journal: str = "sqlite"
    sqlite_path: str | None = None
    stream: str | None = None
    max_attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    accept_loss: str | None = None

    def __post_init__(self) -> None:
        checks.one_of(self.journal, JOURNALS, decision="pattern", what="WriteBehind journal")
        for name in ("sqlite_path", "stream"):
            checks.text(getattr(self, name), decision="pattern", what=name, optional=True)
        if self.journal == "sqlite" and not self.sqlite_path:
            raise ConfigurationError(
                "pattern",
                "WriteBehind(journal='sqlite') needs sqlite_path: the file that keeps "
                "acknowledged writes until they reach the source",
            )
        checks.integer(self.max_attempts, decision="pattern", what="WriteBehind max_attempts")
        for name in ("backoff", "max_backoff"):
            object.__setattr__(
                self, name, to_seconds(getattr(self, name), decision="pattern", what=name)
            )
        if self.accept_loss is not None and (
            not isinstance(self.accept_loss, str) or not self.accept_loss.strip()
        ):
            raise ConfigurationError(
                "pattern", "WriteBehind accept_loss must say who accepted the loss and why"
            )


Pattern = CacheAside | ReadThrough | WriteThrough | WriteBehind


# --- 2. invalidation ----------------------------------------------------------------------


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


# --- 3. stampede protection: see stampede/decisions.py ------------------------------------


# --- 4. sensitivity -----------------------------------------------------------------------


class Sensitivity(enum.Enum):
    """What the data is, which decides whether and how it may be cached."""

    PUBLIC = "public"
    """Same for everyone: cache freely."""
    PERSONAL = "personal"
    """About one person: needs scope dimensions and hashed key material."""
    TRANSACTIONAL = "transactional"
    """Money, stock, seats being sold: refused unless bounded staleness is acknowledged."""

    @staticmethod
    def transactional(*, max_staleness: Duration, acknowledged_by: str) -> SensitivityClass:
        """TRANSACTIONAL data, cached with a documented, bounded staleness."""
        return SensitivityClass(
            Sensitivity.TRANSACTIONAL,
            max_staleness=to_seconds(max_staleness, decision="sensitivity", what="max_staleness"),
            acknowledged_by=acknowledged_by,
        )


@dataclass(frozen=True, slots=True)
class SensitivityClass:
    """A sensitivity level plus, for TRANSACTIONAL, the staleness acknowledgement."""

    level: Sensitivity
    max_staleness: float | None = None
    acknowledged_by: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.level, Sensitivity):
            raise ConfigurationError(
                "sensitivity", f"level must be a Sensitivity, got {self.level!r}"
            )
        if self.max_staleness is not None:
            object.__setattr__(
                self,
                "max_staleness",
                to_seconds(self.max_staleness, decision="sensitivity", what="max_staleness"),
            )
        checks.text(
            self.acknowledged_by, decision="sensitivity", what="acknowledged_by", optional=True
        )


# --- 5. eviction --------------------------------------------------------------------------

DEFAULT_MAX_ENTRIES: Final = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Eviction:
    """Which in-process entries leave when the namespace's memory store is full.

    ``policy`` is a name from ``steadycache.eviction.POLICIES`` or ``"default"`` (chosen
    from measurements on real traces; see the README). Give ``max_entries``, ``max_bytes``
    or both.
    """

    policy: str = "default"
    max_entries: int | None = DEFAULT_MAX_ENTRIES
    max_bytes: int | None = None
    #: A shared Redis whose ``maxmemory-policy`` is ``noeviction`` refuses writes when full;
    #: steadycache refuses to start on such a server unless this is True.
    accept_redis_noeviction: bool = False

    def __post_init__(self) -> None:
        if self.max_entries is None and self.max_bytes is None:
            raise ConfigurationError(
                "eviction", "an unbounded cache is a memory leak: give max_entries or max_bytes"
            )
        for name in ("max_entries", "max_bytes"):
            value = getattr(self, name)
            if value is not None:
                checks.integer(value, decision="eviction", what=name)
        checks.flag(
            self.accept_redis_noeviction, decision="eviction", what="accept_redis_noeviction"
        )
        from steadycache.eviction import POLICIES  # local: eviction imports nothing of ours

        if not isinstance(self.policy, str) or (
            self.policy != "default" and self.policy not in POLICIES
        ):
            valid = ", ".join(["default", *sorted(POLICIES)])
            raise ConfigurationError(
                "eviction", f"unknown eviction policy {self.policy!r}; choose one of {valid}"
            )


# --- 6. cold start ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoWarmUp:
    """Start cold: the first requests after a deploy all miss."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HotKeyWarmUp:
    """Track the namespace's hottest keys, snapshot them, reload them at start-up.

    ``top_k`` keys are tracked with Space-Saving (bounded memory). The snapshot is written
    every ``snapshot_interval`` seconds and at ``close()``, to ``snapshot_path``, or, when
    that is None and the namespace has ``SharedTiers``, to Redis, where every process of the
    fleet finds it (kept a week); ``warm()``
    reloads them with at most ``concurrency`` loads at once and ``rate`` loads per second,
    through the origin limiter. Readiness turns true at ``target`` (fraction of the
    snapshot loaded) or after ``deadline`` seconds, whichever comes first.
    """

    top_k: int = 1000
    snapshot_path: str | None = None
    snapshot_interval: float = 60.0
    concurrency: int = 4
    rate: float | None = None
    target: float = 0.9
    deadline: float = 30.0

    def __post_init__(self) -> None:
        for name in ("top_k", "concurrency"):
            checks.integer(getattr(self, name), decision="warm_up", what=f"HotKeyWarmUp {name}")
        checks.text(
            self.snapshot_path, decision="warm_up", what="HotKeyWarmUp snapshot_path", optional=True
        )
        if self.rate is not None:
            object.__setattr__(
                self,
                "rate",
                checks.number(
                    self.rate,
                    decision="warm_up",
                    what="HotKeyWarmUp rate",
                    low=0.0,
                    high=1e9,
                    low_open=True,
                ),
            )
        object.__setattr__(
            self,
            "target",
            checks.fraction(
                self.target, decision="warm_up", what="HotKeyWarmUp target", low_open=True
            ),
        )
        for name in ("snapshot_interval", "deadline"):
            object.__setattr__(
                self, name, to_seconds(getattr(self, name), decision="warm_up", what=name)
            )


WarmUp = NoWarmUp | HotKeyWarmUp


# --- 7. distributed consistency -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalOnly:
    """Entries live in this process only; other processes have their own copies."""


ON_STORE_ERROR: Final = ("fallback", "raise")


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedTiers:
    """An in-process L1 in front of a shared Redis/Valkey L2, kept coherent by a backplane.

    - ``l1_max_age``: an L1 copy lives at most this long, so a lost invalidation message
      cannot keep a stale copy for longer.
    - ``leases``: one process across the fleet loads a missing key (``SET NX PX``); a
      lease also rejects a load that started before an invalidation (stale-set race).
    - ``lease_ttl``: a crashed holder's lease expires after this long, so it delays the
      other processes' callers by at most this much; a live holder renews its lease every
      third of it while its load runs, however long the load takes. ``SingleFlight``'s
      ``wait_timeout`` must be at least twice this: one lease to see a crashed holder's
      lease expire, one for the load of the process that takes over.
    - ``wait_replicas`` / ``wait_timeout``: after a write, ``WAIT`` for that many replica
      acknowledgements (0: asynchronous replication, Redis's default).
    - ``on_store_error``: ``"fallback"`` (serve from L1, stale, then the loader; counted
      and logged) or ``"raise"`` (``StoreError`` reaches the caller).
    """

    l1_max_age: float = 5.0
    leases: bool = True
    lease_ttl: float = 2.0
    wait_replicas: int = 0
    wait_timeout: float = 0.1
    on_store_error: str = "fallback"

    def __post_init__(self) -> None:
        for name in ("l1_max_age", "lease_ttl", "wait_timeout"):
            object.__setattr__(
                self, name, to_seconds(getattr(self, name), decision="consistency", what=name)
            )
        checks.integer(self.wait_replicas, decision="consistency", what="wait_replicas", minimum=0)
        checks.flag(self.leases, decision="consistency", what="SharedTiers leases")
        checks.one_of(
            self.on_store_error, ON_STORE_ERROR, decision="consistency", what="on_store_error"
        )


Consistency = LocalOnly | SharedTiers


# --- 8. key scope and security ------------------------------------------------------------


@dataclass(frozen=True, slots=True, init=False)
class Scope:
    """Dimensions every key of the namespace must carry (``Scope("tenant_id", "user_id")``).

    A call that omits one raises ``MissingScopeError`` before anything is read or written,
    so two users (or tenants, or locales) can never be served each other's entries.
    """

    dimensions: tuple[str, ...]

    def __init__(self, *dimensions: str) -> None:
        seen: set[str] = set()
        for dimension in dimensions:
            if not isinstance(dimension, str) or not dimension.isidentifier():
                raise ConfigurationError(
                    "security", f"scope dimension must be an identifier string, got {dimension!r}"
                )
            if dimension in seen:
                raise ConfigurationError("security", f"scope dimension {dimension!r} is repeated")
            seen.add(dimension)
        object.__setattr__(self, "dimensions", tuple(dimensions))


CODECS: Final = ("json", "msgpack")
MAX_KEY_LENGTH_LIMIT: Final = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Security:
    """Key scope, key hashing and the value codec.

    ``hash_keys`` replaces the key material in stored key names by a keyed digest, so
    personal data never appears in a key listing; it is required for PERSONAL data.
    Only data-only codecs exist: pickle is never a default and not offered.
    """

    scope: Scope = field(default_factory=Scope)
    hash_keys: bool = False
    codec: str = "json"
    max_key_length: int = 250

    def __post_init__(self) -> None:
        if not isinstance(self.scope, Scope):
            raise ConfigurationError("security", f"scope must be Scope(...), got {self.scope!r}")
        checks.flag(self.hash_keys, decision="security", what="Security hash_keys")
        if not isinstance(self.codec, str) or self.codec not in CODECS:
            raise ConfigurationError(
                "security",
                f"unknown codec {self.codec!r}; choose one of {', '.join(CODECS)} "
                "(pickle is refused: it executes code from whoever can write the cache)",
            )
        checks.integer(self.max_key_length, decision="security", what="max_key_length")
        if not 32 <= self.max_key_length <= MAX_KEY_LENGTH_LIMIT:
            raise ConfigurationError(
                "security",
                f"max_key_length must be between 32 and {MAX_KEY_LENGTH_LIMIT}, "
                f"got {self.max_key_length}",
            )


# --- 9. observability ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Observability:
    """Counters per namespace and tier, and the window of the rolling hit ratio."""

    rolling_window: float = 60.0

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "rolling_window",
            to_seconds(self.rolling_window, decision="observability", what="rolling_window"),
        )


# --- 10. sizing ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Sizing:
    """Limits on what one entry may cost."""

    max_value_bytes: int = 1024 * 1024

    def __post_init__(self) -> None:
        checks.integer(self.max_value_bytes, decision="sizing", what="max_value_bytes")


# --- the policy ---------------------------------------------------------------------------


class _Unset(enum.Enum):
    UNSET = "unset"


UNSET: Final = _Unset.UNSET

DECISIONS: Final = (
    "pattern",
    "invalidation",
    "stampede",
    "sensitivity",
    "eviction",
    "warm_up",
    "consistency",
    "security",
    "observability",
    "sizing",
)

_EXPECTED_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "pattern": (CacheAside, ReadThrough, WriteThrough, WriteBehind),
    "invalidation": (Invalidation,),
    "stampede": (Stampede,),
    "sensitivity": (SensitivityClass,),
    "eviction": (Eviction,),
    "warm_up": (NoWarmUp, HotKeyWarmUp),
    "consistency": (LocalOnly, SharedTiers),
    "security": (Security,),
    "observability": (Observability,),
    "sizing": (Sizing,),
}


def _defaults() -> dict[str, Any]:
    return {
        "pattern": CacheAside(),
        "invalidation": Invalidation(),
        "stampede": Stampede(),
        "sensitivity": SensitivityClass(Sensitivity.PUBLIC),
        "eviction": Eviction(),
        "warm_up": NoWarmUp(),
        "consistency": LocalOnly(),
        "security": Security(),
        "observability": Observability(),
        "sizing": Sizing(),
    }


@dataclass(frozen=True, init=False)
class Policy:
    """The ten decisions for one namespace. Keyword-only; every field records if it was chosen.

    Shorthands: ``invalidation=Ttl(60)`` means ``Invalidation(ttl=Ttl(60))`` and
    ``sensitivity=Sensitivity.PERSONAL`` means ``SensitivityClass(Sensitivity.PERSONAL)``.
    """

    pattern: Pattern
    invalidation: Invalidation
    stampede: Stampede
    sensitivity: SensitivityClass
    eviction: Eviction
    warm_up: WarmUp
    consistency: Consistency
    security: Security
    observability: Observability
    sizing: Sizing
    #: Names of the decisions that were chosen explicitly (the rest are defaults).
    explicit: frozenset[str]

    def __init__(
        self,
        *,
        pattern: Pattern | _Unset = UNSET,
        invalidation: Invalidation | Ttl | _Unset = UNSET,
        stampede: Stampede | _Unset = UNSET,
        sensitivity: SensitivityClass | Sensitivity | _Unset = UNSET,
        eviction: Eviction | _Unset = UNSET,
        warm_up: WarmUp | _Unset = UNSET,
        consistency: Consistency | _Unset = UNSET,
        security: Security | _Unset = UNSET,
        observability: Observability | _Unset = UNSET,
        sizing: Sizing | _Unset = UNSET,
    ) -> None:
        given: dict[str, Any] = {
            "pattern": pattern,
            "invalidation": Invalidation(ttl=invalidation)
            if isinstance(invalidation, Ttl)
            else invalidation,
            "stampede": stampede,
            "sensitivity": SensitivityClass(sensitivity)
            if isinstance(sensitivity, Sensitivity)
            else sensitivity,
            "eviction": eviction,
            "warm_up": warm_up,
            "consistency": consistency,
            "security": security,
            "observability": observability,
            "sizing": sizing,
        }
        defaults = _defaults()
        explicit = frozenset(name for name, value in given.items() if value is not UNSET)
        for name in DECISIONS:
            value = given[name] if name in explicit else defaults[name]
            if not isinstance(value, _EXPECTED_TYPES[name]):
                kinds = " or ".join(kind.__name__ for kind in _EXPECTED_TYPES[name])
                raise ConfigurationError(name, f"expected {kinds}, got {value!r}")
            object.__setattr__(self, name, value)
        object.__setattr__(self, "explicit", explicit)
        self._check_contradictions()

    def is_explicit(self, decision: str) -> bool:
        """Whether ``decision`` was chosen by the user rather than left at its default."""
        if decision not in DECISIONS:
            raise ValueError(f"unknown decision {decision!r}; decisions are {DECISIONS}")
        return decision in self.explicit

    def replace(self, **changes: Any) -> Policy:
        """A copy with some decisions changed; the others keep their explicit/default status."""
        kept = {name: getattr(self, name) for name in self.explicit}
        return Policy(**(kept | changes))

    def _check_contradictions(self) -> None:
        consistency = self.consistency
        if isinstance(consistency, SharedTiers) and consistency.leases:
            flight = self.stampede.single_flight
            if flight is None:
                raise ConfigurationError(
                    "stampede",
                    "SharedTiers(leases=True) is fleet-wide single-flight and needs "
                    "SingleFlight() in this process too (its wait_timeout bounds the wait for "
                    "another process's load); or set SharedTiers(leases=False)",
                )
            if flight.wait_timeout < 2 * consistency.lease_ttl:
                raise ConfigurationError(
                    "stampede",
                    f"SingleFlight wait_timeout ({flight.wait_timeout:g}s) is shorter than twice "
                    f"SharedTiers lease_ttl ({consistency.lease_ttl:g}s): a caller would give up "
                    "before a crashed holder's lease expired and another process loaded the "
                    "key. Raise wait_timeout or lower lease_ttl (live holders renew their lease)",
                )
        sensitivity = self.sensitivity
        if sensitivity.level is Sensitivity.PERSONAL:
            if not self.security.scope.dimensions:
                raise ConfigurationError(
                    "sensitivity",
                    "PERSONAL data needs scope dimensions (security=Security(scope=Scope("
                    "'user_id'), hash_keys=True)) so one person's entry is never served to another",
                )
            if not self.security.hash_keys:
                raise ConfigurationError(
                    "sensitivity",
                    "PERSONAL data needs hash_keys=True so personal data never appears "
                    "in key names",
                )
            if isinstance(self.warm_up, HotKeyWarmUp) and (
                self.warm_up.snapshot_path or isinstance(self.consistency, SharedTiers)
            ):
                raise ConfigurationError(
                    "warm_up",
                    "a hot-key snapshot of PERSONAL data would write personal keys to disk or "
                    "to Redis; warm PERSONAL namespaces with warm(items) and NoWarmUp()",
                )
        if sensitivity.level is Sensitivity.TRANSACTIONAL:
            if sensitivity.max_staleness is None or not sensitivity.acknowledged_by:
                raise ConfigurationError(
                    "sensitivity",
                    "TRANSACTIONAL data is not cached unless a bounded staleness is acknowledged: "
                    "use Sensitivity.transactional(max_staleness=..., "
                    "acknowledged_by='who and why')",
                )
            worst = self.invalidation.ttl.seconds + self.stampede.stale_seconds
            if worst > sensitivity.max_staleness:
                raise ConfigurationError(
                    "sensitivity",
                    f"TRANSACTIONAL data acknowledged for at most {sensitivity.max_staleness:g}s "
                    f"of staleness, but the TTL ({self.invalidation.ttl.seconds:g}s) plus stale "
                    f"serving ({self.stampede.stale_seconds:g}s) allows {worst:g}s",
                )
