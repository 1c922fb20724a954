"""The synchronous facade: ``Cache`` holds namespaces; a ``Namespace`` is where you read and write.

::

    cache = Cache()
    seats = cache.namespace("seats", Policy(pattern=ReadThrough(), invalidation=Ttl(60)))
    free = seats.get_or_load(("workshop", 42), lambda: db.free_seats(42))

    @cache.cached("profile", Policy(...))
    def profile(user_id: int) -> dict: ...
"""

from __future__ import annotations

import inspect
import random as random_module
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, ParamSpec, TypeVar, cast

from steadycache._core.durations import Duration
from steadycache._core.freshness import RandomSource
from steadycache._decorating import CachedFunction, KeyFunction, call_key, claim_identity
from steadycache._namespace_core import (
    Clock,
    NamespaceCore,
    TraceSink,
    journal_for,
    logger,
    shared_store_for,
    store_for,
)
from steadycache.errors import (
    ConfigurationError,
    UsageError,
)
from steadycache.invalidation.router import EventRouter
from steadycache.namespace import Namespace
from steadycache.observability.stats import NamespaceStats
from steadycache.policy import HotKeyWarmUp, Policy, SharedTiers, WriteBehind
from steadycache.stampede.leases import LeaseKeeper
from steadycache.stampede.readiness import Readiness
from steadycache.stores.base import Store

if TYPE_CHECKING:
    from steadycache.stores.redis_backend import RedisBackend

P = ParamSpec("P")
T = TypeVar("T")

_REFRESH_WORKERS = 4
# Loads run on these threads only when LoaderTimeouts is set (a thread cannot be
# interrupted, so the caller waits on a future instead of running the loader itself).
_TIMED_LOAD_WORKERS = 32


class Cache:
    """A set of namespaces sharing a clock, a random source and a background worker pool."""

    def __init__(
        self,
        *,
        clock: Clock = time.time,
        random: RandomSource = random_module.random,
        key_secret: bytes = b"",
        trace: TraceSink | None = None,
        store_factory: Callable[[Policy], Store] | None = None,
        redis: RedisBackend | None = None,
    ) -> None:
        self._redis = redis
        self._checked_servers: set[bool] = set()
        self._clock = clock
        self._random = random
        self._key_secret = key_secret
        self._trace = trace
        self._store_factory = store_factory
        self._namespaces: dict[str, Namespace] = {}
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._timed: ThreadPoolExecutor | None = None
        self._maintenance: threading.Thread | None = None
        self._leases: LeaseKeeper | None = None
        self._stopping = threading.Event()
        self._closed = False
        #: Ready once every ``warm()`` reached its target or deadline.
        self.readiness = Readiness()

    def namespace(
        self, name: str, policy: Policy | None = None, *, store: Store | None = None
    ) -> Namespace:
        """Create (or return the existing) namespace ``name``.

        Asking again for an existing name with a different policy is an error: two parts
        of a service must not silently disagree about one namespace's decisions.
        """
        with self._lock:
            existing = self._namespaces.get(name)
            if existing is not None:
                if policy is not None and policy != existing.policy:
                    raise UsageError(
                        f"namespace {name!r} already exists with another policy; "
                        "define each namespace's policy in one place"
                    )
                return existing
            policy = policy if policy is not None else Policy()
            core = NamespaceCore(
                name,
                policy,
                clock=self._clock,
                random=self._random,
                key_secret=self._key_secret,
                trace=self._trace,
            )
            if store is None:
                if isinstance(policy.consistency, SharedTiers):
                    store = self._shared_store(name, policy)
                elif self._store_factory is not None:
                    store = self._store_factory(policy)
                else:
                    store = store_for(policy, self._clock)
            namespace = Namespace(core, store, self)
            if isinstance(policy.pattern, WriteBehind):
                namespace._journal = journal_for(name, policy, self._redis)
            self._namespaces[name] = namespace
            if (
                policy.stampede.refresh_ahead is not None
                or isinstance(policy.warm_up, HotKeyWarmUp)
                or isinstance(policy.consistency, SharedTiers)
            ):
                self._start_maintenance_locked()
            return namespace

    def _shared_store(self, name: str, policy: Policy) -> Store:
        consistency = policy.consistency
        assert isinstance(consistency, SharedTiers)
        if self._redis is None:
            raise ConfigurationError(
                "consistency",
                f"namespace {name!r} asks for SharedTiers but this Cache has no Redis: "
                "Cache(redis=RedisBackend('redis://...'))",
            )
        accept = policy.eviction.accept_redis_noeviction
        if accept not in self._checked_servers:
            report = self._redis.check_server(accept_noeviction=accept)
            logger.info("redis for namespace %s: %s", name, report.note)
            self._checked_servers.add(accept)
        return shared_store_for(name, policy, self._redis, self._clock)

    def _start_maintenance_locked(self) -> None:
        if self._maintenance is not None or self._closed:
            return
        self._maintenance = threading.Thread(
            target=self._maintenance_loop, name="steadycache-maintenance", daemon=True
        )
        self._maintenance.start()

    def _maintenance_loop(self) -> None:
        while not self._stopping.is_set():
            namespaces = list(self._namespaces.values())
            intervals = [
                ns.policy.stampede.refresh_ahead.check_interval
                for ns in namespaces
                if ns.policy.stampede.refresh_ahead is not None
            ]
            now = self._clock()
            for ns in namespaces:
                try:
                    ns._maintain(now)
                except Exception:  # a maintenance pass must never kill the worker
                    logger.exception("maintenance failed for namespace %s", ns.name)
            self._stopping.wait(min(intervals, default=1.0))

    def _lease_keeper(self) -> LeaseKeeper:
        """The thread renewing this cache's fleet leases while their loads run."""
        keeper = self._leases
        if keeper is None:
            with self._lock:
                if self._leases is None:
                    self._leases = LeaseKeeper()
                keeper = self._leases
        return keeper

    def _timed_executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._timed is None:
                self._timed = ThreadPoolExecutor(
                    max_workers=_TIMED_LOAD_WORKERS, thread_name_prefix="steadycache-load"
                )
            return self._timed

    def start(self) -> None:
        """Re-read each shared namespace's generation and wait (up to 2 s) until the
        backplane listens, so no invalidation published from now on is missed.

        Namespaces already check their servers and read the fleet's generation when they
        are created; call this from a start-up hook, as with ``AsyncCache.start()``.
        """
        for ns in self.namespaces().values():
            ns.start()
        if self._redis is not None and self._redis._backplane is not None:
            self._redis.backplane().wait_subscribed(2.0)

    def namespaces(self) -> dict[str, Namespace]:
        """All namespaces by name."""
        return dict(self._namespaces)

    def event_router(self) -> EventRouter:
        """Routes events and table changes to the namespaces whose policy declares them
        (``Invalidation.triggers``); give it to the bus or a database invalidator."""
        return EventRouter(
            ns for ns in self.namespaces().values() if ns.policy.invalidation.triggers
        )

    def stats(self) -> dict[str, NamespaceStats]:
        """A snapshot per namespace."""
        return {name: ns.stats() for name, ns in self.namespaces().items()}

    def cached(
        self,
        namespace: str | Namespace,
        policy: Policy | None = None,
        *,
        key: KeyFunction | None = None,
        ttl: Duration | None = None,
    ) -> Callable[[Callable[P, T]], CachedFunction[P, T]]:
        """Decorate a sync function: read-through caching of its result by its arguments.

        Arguments named like the namespace's scope dimensions become the scope; the others
        become the key, after the function's module and qualified name, unless
        ``key(*args, **kwargs)`` says otherwise. The wrapper has ``key(*args, **kwargs)``
        (the stored key of that call) and ``invalidate(*args, **kwargs)``.
        """
        ns = namespace if isinstance(namespace, Namespace) else self.namespace(namespace, policy)
        ns._core.ttl_override(ttl)  # a bad or too-long ttl fails here, at import

        def decorate(function: Callable[P, T]) -> CachedFunction[P, T]:
            if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
                raise UsageError(
                    f"Cache.cached cannot decorate async function {function.__qualname__}: "
                    "use AsyncCache.cached"
                )
            split = call_key(function, ns.policy.security.scope.dimensions, key)
            claim_identity(ns._decorated, function, ns.name, key)

            def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
                key_parts, scope = split(args, kwargs)
                return ns.get_or_load(
                    key_parts, lambda: function(*args, **kwargs), scope=scope, ttl=ttl
                )

            def stored_key(*args: P.args, **kwargs: P.kwargs) -> str:
                key_parts, scope = split(args, kwargs)
                return ns.stored_key(key_parts, scope=scope)

            def invalidate(*args: P.args, **kwargs: P.kwargs) -> bool:
                key_parts, scope = split(args, kwargs)
                return ns.invalidate(key_parts, scope=scope)

            wrapper.__wrapped__ = function  # type: ignore[attr-defined]
            wrapper.__name__ = function.__name__
            wrapper.__qualname__ = function.__qualname__
            wrapper.__doc__ = function.__doc__
            wrapper.namespace = ns  # type: ignore[attr-defined]
            wrapper.key = stored_key  # type: ignore[attr-defined]
            wrapper.invalidate = invalidate  # type: ignore[attr-defined]
            return cast("CachedFunction[P, T]", wrapper)

        return decorate

    def _background(self, task: Callable[[], None]) -> None:
        with self._lock:
            if self._closed:
                return
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=_REFRESH_WORKERS, thread_name_prefix="steadycache-refresh"
                )
            self._executor.submit(task)

    def close(self) -> None:
        """Stop the workers, snapshot hot keys, wait for background loads, release stores."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
            timed, self._timed = self._timed, None
            maintenance, self._maintenance = self._maintenance, None
        self._stopping.set()
        if maintenance is not None:
            maintenance.join()
        for pool in (executor, timed):
            if pool is not None:
                pool.shutdown(wait=True)
        if self._leases is not None:
            self._leases.close()
        for ns in self._namespaces.values():
            ns.snapshot_hot_keys()
            ns.store.close()
            if ns.journal is not None:
                ns.journal.close()
        if self._redis is not None:
            self._redis.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


__all__ = ["Cache"]
