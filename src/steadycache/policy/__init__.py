"""The ten decisions of a production cache, one value object each, held by a frozen ``Policy``.

Every decision is explicit or defaulted, and the ``Policy`` remembers which (the audit reads
``Policy.explicit``). Invalid values, wrong types and contradictions between decisions raise
``ConfigurationError`` at construction, naming the decision and the reason. A decision
whose machinery is not in this release raises ``NotAvailableYetError`` instead of being
silently ignored. This package sits below everything that acts on a policy: it imports
nothing of steadycache's but the error tree.

=====  ===================  ===========================================================
 #     decision (module)    value objects
=====  ===================  ===========================================================
 1     ``pattern``          ``CacheAside()``, ``ReadThrough()``, ``WriteThrough()``,
                           ``WriteBehind(journal="sqlite", sqlite_path=...)``
 2     ``invalidation``     ``Invalidation(ttl=Ttl(60, jitter=0.1), owner=..., triggers=...)``;
                           shorthands ``invalidation=Ttl(60)`` and ``Policy(ttl=60)``
 3     ``stampede``         ``Stampede(single_flight=..., early_refresh=..., ...)``
 4     ``sensitivity``      ``Sensitivity.PUBLIC``, ``.PERSONAL``, ``.transactional(...)``
 5     ``eviction``         ``Eviction(policy="s3fifo", max_entries=..., max_bytes=...)``
 6     ``warm_up``          ``NoWarmUp()``, ``HotKeyWarmUp(...)``
 7     ``consistency``      ``LocalOnly()``, ``SharedTiers(...)``
 8     ``security``         ``Security(scope=Scope("user_id"), hash_keys=True, codec=...)``
 9     ``observability``    ``Observability(rolling_window=60)``
 10    ``sizing``           ``Sizing(max_value_bytes=1 MiB)``
=====  ===================  ===========================================================

``checks`` holds the validators every decision uses; ``_policy`` the field table the
``Policy`` is derived from.
"""

from __future__ import annotations

from steadycache.policy._policy import DECISION_FIELDS, DECISIONS, UNSET, DecisionField, Policy
from steadycache.policy.consistency import ON_STORE_ERROR, Consistency, LocalOnly, SharedTiers
from steadycache.policy.eviction import DEFAULT_MAX_ENTRIES, EVICTION_POLICIES, Eviction
from steadycache.policy.invalidation import (
    TABLE_EVENT_PREFIX,
    Invalidation,
    OnEvent,
    OnTableChange,
    Trigger,
    Ttl,
)
from steadycache.policy.observability import Observability
from steadycache.policy.pattern import (
    JOURNALS,
    CacheAside,
    Pattern,
    ReadThrough,
    WriteBehind,
    WriteThrough,
)
from steadycache.policy.security import CODECS, MAX_KEY_LENGTH_LIMIT, Scope, Security
from steadycache.policy.sensitivity import Sensitivity, SensitivityClass
from steadycache.policy.sizing import Sizing
from steadycache.policy.stampede import (
    EarlyRefresh,
    LoaderTimeouts,
    OriginLimit,
    RefreshAhead,
    SingleFlight,
    StaleIfError,
    StaleWhileRevalidate,
    Stampede,
)
from steadycache.policy.warm_up import HotKeyWarmUp, NoWarmUp, WarmUp

__all__ = [
    "CODECS",
    "DECISIONS",
    "DECISION_FIELDS",
    "DEFAULT_MAX_ENTRIES",
    "EVICTION_POLICIES",
    "JOURNALS",
    "MAX_KEY_LENGTH_LIMIT",
    "ON_STORE_ERROR",
    "TABLE_EVENT_PREFIX",
    "UNSET",
    "CacheAside",
    "Consistency",
    "DecisionField",
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
