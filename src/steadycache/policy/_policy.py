"""The ``Policy``: the ten decisions of one namespace, each chosen or defaulted.

``DECISION_FIELDS`` is the one table the policy is made from: each decision's name, the
value objects it accepts, its default and its shorthand. ``DECISIONS``, the defaults, the
type checks and ``Policy.explicit`` all derive from it, so a new decision is one row here
(and its keyword in ``Policy.__init__``, for the type checker).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from steadycache.errors import ConfigurationError
from steadycache.policy.checks import Duration
from steadycache.policy.consistency import Consistency, LocalOnly, SharedTiers
from steadycache.policy.eviction import Eviction
from steadycache.policy.invalidation import Invalidation, Ttl
from steadycache.policy.observability import Observability
from steadycache.policy.pattern import CacheAside, Pattern, ReadThrough, WriteBehind, WriteThrough
from steadycache.policy.security import Security
from steadycache.policy.sensitivity import Sensitivity, SensitivityClass
from steadycache.policy.sizing import Sizing
from steadycache.policy.stampede import Stampede
from steadycache.policy.warm_up import HotKeyWarmUp, NoWarmUp, WarmUp


class _Unset(enum.Enum):
    UNSET = "unset"


#: "Not chosen": distinct from every value a decision can take (None included).
UNSET: Final = _Unset.UNSET


@dataclass(frozen=True, slots=True)
class DecisionField:
    """One decision of the policy: what it accepts, its default, its shorthand."""

    name: str
    kinds: tuple[type, ...]
    default: Callable[[], object]
    #: Turns a convenient value into the decision's own (``Ttl(60)`` -> ``Invalidation``).
    shorthand: Callable[[object], object] | None = None


def _invalidation_shorthand(value: object) -> object:
    return Invalidation(ttl=value) if isinstance(value, Ttl) else value


def _sensitivity_shorthand(value: object) -> object:
    return SensitivityClass(value) if isinstance(value, Sensitivity) else value


DECISION_FIELDS: Final = (
    DecisionField("pattern", (CacheAside, ReadThrough, WriteThrough, WriteBehind), CacheAside),
    DecisionField("invalidation", (Invalidation,), Invalidation, _invalidation_shorthand),
    DecisionField("stampede", (Stampede,), Stampede),
    DecisionField(
        "sensitivity",
        (SensitivityClass,),
        lambda: SensitivityClass(Sensitivity.PUBLIC),
        _sensitivity_shorthand,
    ),
    DecisionField("eviction", (Eviction,), Eviction),
    DecisionField("warm_up", (NoWarmUp, HotKeyWarmUp), NoWarmUp),
    DecisionField("consistency", (LocalOnly, SharedTiers), LocalOnly),
    DecisionField("security", (Security,), Security),
    DecisionField("observability", (Observability,), Observability),
    DecisionField("sizing", (Sizing,), Sizing),
)
DECISIONS: Final = tuple(field.name for field in DECISION_FIELDS)


@dataclass(frozen=True, init=False)
class Policy:
    """The ten decisions for one namespace. Keyword-only; every field records if it was chosen.

    Shorthands: ``ttl=60`` (seconds, a ``timedelta`` or a ``Ttl``) means
    ``invalidation=Ttl(60)``, which means ``Invalidation(ttl=Ttl(60))``, and chooses the
    invalidation decision (giving ``invalidation=`` as well is refused);
    ``sensitivity=Sensitivity.PERSONAL`` means ``SensitivityClass(Sensitivity.PERSONAL)``.

    The pattern left unchosen is ``CacheAside()`` but lets ``get_or_load``/``@cached``
    load too; ``pattern=CacheAside()`` chosen on purpose says the application loads, and
    the namespace refuses loaders (``UsageError``), refresh-ahead and hot-key warm-up.
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
        ttl: Duration | Ttl | _Unset = UNSET,
    ) -> None:
        if ttl is not UNSET:
            if invalidation is not UNSET:
                raise ConfigurationError(
                    "invalidation",
                    "give ttl= or invalidation=, not both: ttl=60 is shorthand for "
                    "invalidation=Ttl(60); with more to say, "
                    "invalidation=Invalidation(ttl=Ttl(60), ...)",
                )
            invalidation = ttl if isinstance(ttl, Ttl) else Ttl(ttl)
        given = {
            "pattern": pattern,
            "invalidation": invalidation,
            "stampede": stampede,
            "sensitivity": sensitivity,
            "eviction": eviction,
            "warm_up": warm_up,
            "consistency": consistency,
            "security": security,
            "observability": observability,
            "sizing": sizing,
        }
        explicit = frozenset(name for name, value in given.items() if value is not UNSET)
        for field in DECISION_FIELDS:
            value: Any = given[field.name]
            if value is UNSET:
                value = field.default()
            elif field.shorthand is not None:
                value = field.shorthand(value)
            if not isinstance(value, field.kinds):
                kinds = " or ".join(kind.__name__ for kind in field.kinds)
                raise ConfigurationError(field.name, f"expected {kinds}, got {value!r}")
            object.__setattr__(self, field.name, value)
        object.__setattr__(self, "explicit", explicit)
        self._check_contradictions()

    def is_explicit(self, decision: str) -> bool:
        """Whether ``decision`` was chosen by the user rather than left at its default."""
        if decision not in DECISIONS:
            raise ValueError(f"unknown decision {decision!r}; decisions are {DECISIONS}")
        return decision in self.explicit

    def replace(self, **changes: Any) -> Policy:
        """A copy with some decisions changed; the others keep their explicit/default status.

        ``ttl=`` replaces the invalidation decision, as it chooses it in ``Policy(ttl=...)``.
        """
        unknown = set(changes) - {*DECISIONS, "ttl"}
        if unknown:
            raise ConfigurationError(
                "policy",
                f"unknown decision(s) {', '.join(sorted(unknown))}; "
                f"decisions are {', '.join(DECISIONS)} (and ttl=, for invalidation)",
            )
        kept = {name: getattr(self, name) for name in self.explicit}
        if "ttl" in changes:
            kept.pop("invalidation", None)
        return Policy(**(kept | changes))

    def _check_contradictions(self) -> None:
        if isinstance(self.pattern, CacheAside) and "pattern" in self.explicit:
            if self.stampede.refresh_ahead is not None:
                raise ConfigurationError(
                    "pattern",
                    "CacheAside() means the application loads every value, so the cache has "
                    "no loader to refresh ahead with: use pattern=ReadThrough() with "
                    "RefreshAhead, or drop refresh_ahead",
                )
            if isinstance(self.warm_up, HotKeyWarmUp):
                raise ConfigurationError(
                    "pattern",
                    "HotKeyWarmUp learns hot keys from get_or_load reads and reloads them "
                    "through the cache, which CacheAside() refuses: use pattern=ReadThrough(), "
                    "or warm the cache yourself with set_many",
                )
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
