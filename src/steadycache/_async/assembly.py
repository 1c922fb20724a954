"""The assembly line: one namespace's parts, built in one place from its policy.

The store (in-process, a custom one, or two tiers over Redis with the cache's backplane),
the journal of a write-behind namespace, the origin limiter and the single-flight table,
the wall-clock check a shared tier needs, and every optional store capability (fleet
leases, shared invalidation marks, documents, a shared tier to start) checked once with
``isinstance`` against its protocol and kept in a typed field, or ``None``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from steadycache._state import Clock, NamespaceState
from steadycache.codecs import codec_for
from steadycache.errors import ConfigurationError
from steadycache.invalidation._async.backplane import AsyncBackplane
from steadycache.policy import Policy, SharedTiers, WriteBehind
from steadycache.stampede._async.flights import AsyncFlightTable
from steadycache.stampede._async.origin import AsyncOriginLimiter
from steadycache.stores._async.capabilities import (
    AsyncDocumentStore,
    AsyncLeaseStore,
    AsyncMarkStore,
    AsyncSharedStore,
    AsyncStore,
)
from steadycache.stores._async.redis import AsyncRedisBackend, AsyncRedisStore
from steadycache.stores._async.tiered import AsyncTieredStore
from steadycache.stores._sync.capabilities import Store
from steadycache.stores.memory import MemoryStore
from steadycache.write_behind.journal import Journal

#: How far an injected clock may be from wall time when entries go to a shared server.
MAX_CLOCK_SKEW: Final = 300.0


@dataclass(slots=True)
class AsyncParts:
    """What a namespace is made of, beside its state."""

    #: Where reads and writes go (the in-process store, or two tiers).
    store: Store | AsyncStore
    #: The in-process tier (the store itself, or the two tiers' L1), if there is one.
    local: MemoryStore | None
    flights: AsyncFlightTable
    limiter: AsyncOriginLimiter | None = None
    #: Fleet-wide single-flight, when the policy asks for it and the store can.
    leases: AsyncLeaseStore | None = None
    #: Invalidation marks shared with other processes.
    marks: AsyncMarkStore | None = None
    #: Documents shared with the fleet (hot-key snapshots).
    documents: AsyncDocumentStore | None = None
    #: A shared tier to start (server check, backplane) and to report apart.
    shared: AsyncSharedStore | None = None
    journal: Journal | None = None


def store_for(policy: Policy, clock: Clock) -> MemoryStore:
    """The namespace's own in-process store, shaped by its eviction decision."""
    eviction = policy.eviction
    return MemoryStore(
        max_entries=eviction.max_entries,
        max_bytes=eviction.max_bytes,
        policy=eviction.policy,
        clock=clock,
    )


def check_wall_clock(name: str, clock: Clock) -> None:
    """A shared tier expires entries by the server's wall clock (``PXAT stale_until``) and
    orders versions by time across processes: the cache's clock must be wall time."""
    skew = abs(clock() - time.time())
    if skew > MAX_CLOCK_SKEW:
        raise ConfigurationError(
            "consistency",
            f"namespace {name!r} uses SharedTiers but the cache's clock is {skew:.0f}s away from "
            "wall time; Redis would expire entries at the wrong moment. Use a wall clock "
            "(time.time) for caches with shared tiers",
        )


def shared_store_for(
    name: str,
    policy: Policy,
    backend: AsyncRedisBackend,
    backplane: AsyncBackplane,
    clock: Clock,
) -> AsyncTieredStore:
    """The namespace's two tiers: its own L1 and the shared Redis L2, with the backplane."""
    check_wall_clock(name, clock)
    consistency = policy.consistency
    assert isinstance(consistency, SharedTiers)
    shared = AsyncRedisStore(
        backend,
        codec_for(policy.security.codec),
        namespace=name,
        wait_replicas=consistency.wait_replicas,
        wait_timeout=consistency.wait_timeout,
    )
    return AsyncTieredStore(
        name,
        store_for(policy, clock),
        shared,
        backplane,
        l1_max_age=consistency.l1_max_age,
        accept_noeviction=policy.eviction.accept_redis_noeviction,
        raise_store_errors=consistency.on_store_error == "raise",
        clock=clock,
    )


def journal_for(name: str, policy: Policy, redis: Any) -> Journal:
    """The write-behind journal of a ``WriteBehind`` namespace (durability checked here).

    ``redis`` is a sync ``RedisBackend`` (journals are sync: an fsync, a ``WAIT``)."""
    # Imported here: the Redis journal needs the redis extra, and `import steadycache` must not.
    from steadycache.write_behind import RedisStreamJournal, SqliteJournal

    pattern = policy.pattern
    assert isinstance(pattern, WriteBehind)
    if pattern.journal == "sqlite":
        assert pattern.sqlite_path is not None
        return SqliteJournal(pattern.sqlite_path)
    if redis is None:
        raise ConfigurationError(
            "pattern",
            f"namespace {name!r} journals writes in Redis but this cache has no Redis: "
            "Cache(redis=RedisBackend('redis://...')), or WriteBehind(journal='sqlite', ...)",
        )
    consistency = policy.consistency
    # One hash tag for the stream and its companions: one cluster slot for the scripts.
    stream = pattern.stream or f"{redis.key_prefix}:wb:{{{name}}}"
    return RedisStreamJournal(
        redis.client,
        stream,
        accept_loss=pattern.accept_loss,
        wait_replicas=consistency.wait_replicas if isinstance(consistency, SharedTiers) else 0,
    )


def assemble(
    state: NamespaceState,
    *,
    store: Store | AsyncStore | None,
    store_factory: Callable[[Policy], Store | AsyncStore] | None,
    redis: AsyncRedisBackend | None,
    backplane: Callable[[], AsyncBackplane],
    journal_redis: Callable[[], Any],
) -> AsyncParts:
    """Every part of the namespace ``state`` describes; bad wiring raises here, at creation.

    ``backplane`` and ``journal_redis`` make the cache's backplane and a sync backend for
    journals only when a namespace needs them."""
    name, policy, clock = state.name, state.policy, state.clock
    consistency = policy.consistency
    if store is None:
        if isinstance(consistency, SharedTiers):
            if redis is None:
                raise ConfigurationError(
                    "consistency",
                    f"namespace {name!r} asks for SharedTiers but this cache has no Redis: "
                    "give the cache redis=... (a RedisBackend, or an AsyncRedisBackend)",
                )
            store = shared_store_for(name, policy, redis, backplane(), clock)
        elif store_factory is not None:
            store = store_factory(policy)
        else:
            store = store_for(policy, clock)
    if isinstance(store, MemoryStore):
        local: MemoryStore | None = store
    elif isinstance(store, AsyncTieredStore):
        local = store.local
    else:
        local = None
    limit = policy.stampede.origin_limit
    parts = AsyncParts(
        store=store,
        local=local,
        flights=AsyncFlightTable(),
        limiter=None if limit is None else AsyncOriginLimiter(name, limit, clock),
    )
    if isinstance(consistency, SharedTiers) and consistency.leases:
        parts.leases = store if isinstance(store, AsyncLeaseStore) else None
    if isinstance(store, AsyncMarkStore):
        parts.marks = store
        state.shared_marks = True
        store.listen_marks(state)
    if isinstance(store, AsyncDocumentStore):
        parts.documents = store
    if isinstance(store, AsyncSharedStore):
        parts.shared = store
    if isinstance(policy.pattern, WriteBehind):
        needs_redis = policy.pattern.journal == "redis"
        parts.journal = journal_for(name, policy, journal_redis() if needs_redis else None)
    return parts
