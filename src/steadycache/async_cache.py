"""The asyncio facade: ``AsyncCache`` and ``AsyncNamespace``, the same names as the sync ones.

Decisions come from the same ``NamespaceCore``; only waiting differs. An in-process store
is called directly (its calls never block), a network store is awaited.
"""

from __future__ import annotations

import asyncio
import inspect
import random as random_module
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from steadycache._core.durations import Duration
from steadycache._core.freshness import RandomSource
from steadycache._decorating import (
    AsyncCachedFunction,
    KeyFunction,
    call_key,
    claim_identity,
)
from steadycache._namespace_core import (
    Clock,
    NamespaceCore,
    TraceSink,
    async_shared_store_for,
    journal_for,
    logger,
    store_for,
)
from steadycache.async_namespace import AsyncNamespace
from steadycache.errors import ConfigurationError, UsageError
from steadycache.observability.stats import NamespaceStats
from steadycache.policy import Policy, SharedTiers, WriteBehind
from steadycache.stampede.leases import AsyncLeaseKeeper
from steadycache.stampede.readiness import Readiness
from steadycache.stores.base import AsyncStore, Store

if TYPE_CHECKING:
    from steadycache.stores.redis_async import AsyncRedisBackend
    from steadycache.stores.redis_backend import RedisBackend

P = ParamSpec("P")
T = TypeVar("T")


class AsyncCache:
    """The asyncio twin of ``Cache``: namespaces, ``cached``, background refresh tasks."""

    def __init__(
        self,
        *,
        clock: Clock = time.time,
        random: RandomSource = random_module.random,
        key_secret: bytes = b"",
        trace: TraceSink | None = None,
        store_factory: Callable[[Policy], Store | AsyncStore] | None = None,
        redis: AsyncRedisBackend | None = None,
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._random = random
        self._key_secret = key_secret
        self._trace = trace
        self._store_factory = store_factory
        self._namespaces: dict[str, AsyncNamespace] = {}
        self._journal_backends: list[RedisBackend] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._maintenance: asyncio.Task[None] | None = None
        self._leases = AsyncLeaseKeeper()
        self._closed = False
        #: Ready once every ``warm()`` reached its target or deadline.
        self.readiness = Readiness()

    def namespace(
        self, name: str, policy: Policy | None = None, *, store: Store | AsyncStore | None = None
    ) -> AsyncNamespace:
        """Create (or return the existing) namespace ``name`` (see ``Cache.namespace``)."""
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
                if self._redis is None:
                    raise ConfigurationError(
                        "consistency",
                        f"namespace {name!r} asks for SharedTiers but this AsyncCache has no "
                        "Redis: AsyncCache(redis=AsyncRedisBackend('redis://...'))",
                    )
                store = async_shared_store_for(name, policy, self._redis, self._clock)
            elif self._store_factory is not None:
                store = self._store_factory(policy)
            else:
                store = store_for(policy, self._clock)
        namespace = AsyncNamespace(core, store, self)
        if isinstance(policy.pattern, WriteBehind):
            # The journal is sync (a fsync or a WAIT): write() runs its append in a thread,
            # so a Redis journal gets a sync client of its own.
            url = getattr(self._redis, "url", None)
            sync_redis = None
            if policy.pattern.journal == "redis" and url is not None:
                from steadycache.stores.redis_backend import RedisBackend  # optional extra

                sync_redis = RedisBackend(url)
                self._journal_backends.append(sync_redis)
            namespace._journal = journal_for(name, policy, sync_redis)
        self._namespaces[name] = namespace
        return namespace

    async def start(self) -> None:
        """Check shared servers, join the backplane and read each shared namespace's
        generation now (else each namespace does it on first use).

        Call it from a start-up hook so a refused Redis configuration (``noeviction``)
        fails the deploy instead of the first request.
        """
        for ns in self._namespaces.values():
            await ns.start()

    def namespaces(self) -> dict[str, AsyncNamespace]:
        """All namespaces by name."""
        return dict(self._namespaces)

    def stats(self) -> dict[str, NamespaceStats]:
        """A snapshot per namespace."""
        return {name: ns.stats() for name, ns in self._namespaces.items()}

    def cached(
        self,
        namespace: str | AsyncNamespace,
        policy: Policy | None = None,
        *,
        key: KeyFunction | None = None,
        ttl: Duration | None = None,
    ) -> Callable[[Callable[P, Coroutine[Any, Any, T]]], AsyncCachedFunction[P, T]]:
        """Decorate an ``async def``: read-through caching by arguments (as ``Cache.cached``)."""
        ns = (
            namespace
            if isinstance(namespace, AsyncNamespace)
            else self.namespace(namespace, policy)
        )
        ns._core.ttl_override(ttl)  # a bad or too-long ttl fails here, at import

        def decorate(
            function: Callable[P, Coroutine[Any, Any, T]],
        ) -> AsyncCachedFunction[P, T]:
            if not inspect.iscoroutinefunction(function):
                what = (
                    "an async generator function (its results cannot be cached)"
                    if inspect.isasyncgenfunction(function)
                    else "a sync function: use Cache.cached"
                )
                raise UsageError(
                    f"AsyncCache.cached cannot decorate "
                    f"{getattr(function, '__qualname__', function)!r}, {what}"
                )
            split = call_key(function, ns.policy.security.scope.dimensions, key)
            claim_identity(ns._decorated, function, ns.name, key)

            async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
                key_parts, scope = split(args, kwargs)
                return await ns.get_or_load(
                    key_parts, lambda: function(*args, **kwargs), scope=scope, ttl=ttl
                )

            def stored_key(*args: P.args, **kwargs: P.kwargs) -> str:
                key_parts, scope = split(args, kwargs)
                return ns.stored_key(key_parts, scope=scope)

            async def invalidate(*args: P.args, **kwargs: P.kwargs) -> bool:
                key_parts, scope = split(args, kwargs)
                return await ns.invalidate(key_parts, scope=scope)

            wrapper.__wrapped__ = function  # type: ignore[attr-defined]
            wrapper.__name__ = function.__name__
            wrapper.__qualname__ = function.__qualname__
            wrapper.__doc__ = function.__doc__
            wrapper.namespace = ns  # type: ignore[attr-defined]
            wrapper.key = stored_key  # type: ignore[attr-defined]
            wrapper.invalidate = invalidate  # type: ignore[attr-defined]
            return cast("AsyncCachedFunction[P, T]", wrapper)

        return decorate

    def _lease_keeper(self) -> AsyncLeaseKeeper:
        """Renews this cache's fleet leases while their loads run."""
        return self._leases

    def _ensure_maintenance(self) -> None:
        if self._maintenance is None and not self._closed:
            self._maintenance = asyncio.get_running_loop().create_task(self._maintenance_loop())

    async def _maintenance_loop(self) -> None:
        while not self._closed:
            namespaces = list(self._namespaces.values())
            now = self._clock()
            for ns in namespaces:
                try:
                    ns._maintain(now)
                except Exception:  # a maintenance pass must never kill the task
                    logger.exception("maintenance failed for namespace %s", ns.name)
            intervals = [
                ns.policy.stampede.refresh_ahead.check_interval
                for ns in namespaces
                if ns.policy.stampede.refresh_ahead is not None
            ]
            await asyncio.sleep(min(intervals, default=1.0))

    def _background(self, refresh: Coroutine[Any, Any, None]) -> None:
        if self._closed:
            refresh.close()
            return
        task = asyncio.get_running_loop().create_task(refresh)
        # Keep a reference: the loop holds tasks only weakly.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Stop the maintenance task, snapshot hot keys, await background loads, close stores."""
        self._closed = True
        if self._maintenance is not None:
            self._maintenance.cancel()
            await asyncio.gather(self._maintenance, return_exceptions=True)
            self._maintenance = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._leases.aclose()
        for ns in self._namespaces.values():
            await ns.snapshot_hot_keys()
            result = ns.store.close()
            if inspect.isawaitable(result):
                await result
            if ns.journal is not None:
                ns.journal.close()
        for backend in self._journal_backends:
            backend.close()
        if self._redis is not None:
            await self._redis.aclose()

    async def __aenter__(self) -> AsyncCache:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
