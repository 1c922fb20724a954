"""The cache facade: namespaces sharing a clock, a random source, a runtime and a server.

::

    cache = AsyncCache()
    seats = cache.namespace("seats", Policy(pattern=ReadThrough(), invalidation=Ttl(60)))
    free = await seats.get_or_load(("workshop", 42), lambda: db.free_seats(42))

    @cache.cached("profile", Policy(...))
    async def profile(user_id: int) -> dict: ...

It is the one source of both the asyncio ``AsyncCache`` and, generated from it, the
threads' ``Cache`` (``steadycache.cache`` adds sync-only event routing to that one).
"""

from __future__ import annotations

import logging
import random as random_module
import threading
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

from steadycache._async.assembly import assemble
from steadycache._async.namespace import AsyncNamespace
from steadycache._core.durations import Duration
from steadycache._core.freshness import RandomSource
from steadycache._decorating import (
    AsyncCachedFunction,
    AsyncDecorated,
    KeyFunction,
    call_key,
    check_kind_async,
)
from steadycache._runtime import AsyncEvent, AsyncRuntime
from steadycache._state import Clock, NamespaceState, TraceSink
from steadycache.errors import UsageError
from steadycache.invalidation._async.backplane import AsyncBackplane
from steadycache.observability.stats import NamespaceStats
from steadycache.policy import HotKeyWarmUp, Policy, SharedTiers
from steadycache.stampede._async.lease_keeper import AsyncLeaseKeeper
from steadycache.stampede.readiness import Readiness
from steadycache.stores._async.capabilities import AsyncStore
from steadycache.stores._async.redis import AsyncRedisBackend
from steadycache.stores._sync.capabilities import Store
from steadycache.write_behind.connections import journal_backend_async

logger = logging.getLogger("steadycache")
P = ParamSpec("P")
T = TypeVar("T")

#: How often the maintenance service looks when no namespace asks for more often.
MAINTENANCE_INTERVAL = 1.0


class AsyncCache:
    """A set of namespaces sharing a clock, a random source and background work."""

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
        self._runtime = AsyncRuntime(clock)
        self._lease_keeper = AsyncLeaseKeeper(self._runtime)
        self._backplane: AsyncBackplane | None = None
        self._journal_backends: list[Any] = []
        self._namespaces: dict[str, AsyncNamespace] = {}
        self._lock = threading.Lock()
        self._maintenance_wake = AsyncEvent()
        self._closed = False
        #: Ready once every ``warm()`` reached its target or deadline.
        self.readiness = Readiness()

    def namespace(
        self, name: str, policy: Policy | None = None, *, store: Store | AsyncStore | None = None
    ) -> AsyncNamespace:
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
            state = NamespaceState(
                name,
                policy,
                clock=self._clock,
                random=self._random,
                key_secret=self._key_secret,
                trace=self._trace,
            )
            parts = assemble(
                state,
                store=store,
                store_factory=self._store_factory,
                redis=self._redis,
                backplane=self._shared_backplane,
                journal_redis=self._journal_redis,
            )
            namespace = AsyncNamespace(
                state,
                parts,
                runtime=self._runtime,
                lease_keeper=self._lease_keeper,
                readiness=self.readiness,
            )
            self._namespaces[name] = namespace
        if (
            policy.stampede.refresh_ahead is not None
            or isinstance(policy.warm_up, HotKeyWarmUp)
            or isinstance(policy.consistency, SharedTiers)
        ):
            self._runtime.want_service("steadycache-maintenance", self._maintenance_loop)
        return namespace

    def _shared_backplane(self) -> AsyncBackplane:
        # One backplane per cache: every namespace with shared tiers listens through it.
        if self._backplane is None:
            assert self._redis is not None
            self._backplane = AsyncBackplane(self._redis, self._runtime)
        return self._backplane

    def _journal_redis(self) -> Any:
        backend, owned = journal_backend_async(self._redis)
        if owned:
            self._journal_backends.append(backend)  # closed with the cache
        return backend

    @property
    def backplane(self) -> AsyncBackplane | None:
        """The invalidation backplane of this cache's shared tiers, if it has any."""
        return self._backplane

    async def start(self) -> None:
        """Check shared servers, join the backplane, read every shared namespace's
        generation and start the maintenance service, now (else on first use).

        Call it from a start-up hook so a refused Redis configuration (``noeviction``)
        fails the deploy instead of the first request; it returns once the backplane
        listens (at most 2 s), so no invalidation published from then on is missed.
        """
        for namespace in self.namespaces().values():
            await namespace.start()
        self._runtime.ensure_services()
        if self._backplane is not None:
            await self._backplane.wait_subscribed(2.0)

    def namespaces(self) -> dict[str, AsyncNamespace]:
        """All namespaces by name."""
        with self._lock:
            return dict(self._namespaces)

    def stats(self) -> dict[str, NamespaceStats]:
        """A snapshot per namespace."""
        return {name: ns.stats() for name, ns in self.namespaces().items()}

    def cached(
        self,
        namespace: str | AsyncNamespace,
        policy: Policy | None = None,
        *,
        key: KeyFunction | None = None,
        ttl: Duration | None = None,
    ) -> Callable[[AsyncDecorated[P, T]], AsyncCachedFunction[P, T]]:
        """Decorate a function: read-through caching of its result by its arguments.

        Arguments named like the namespace's scope dimensions become the scope; the others
        become the key, after the function's module and qualified name, unless
        ``key(*args, **kwargs)`` says otherwise. The wrapper has ``key(*args, **kwargs)``
        (the stored key of that call) and ``invalidate(*args, **kwargs)``.
        """
        ns = (
            namespace
            if isinstance(namespace, AsyncNamespace)
            else self.namespace(namespace, policy)
        )
        ns.check_lifetime(ttl)  # a bad or too-long ttl fails here, at import

        def decorate(function: AsyncDecorated[P, T]) -> AsyncCachedFunction[P, T]:
            check_kind_async(function)
            split = call_key(function, ns.policy.security.scope.dimensions, key)
            ns.claim_function(function, key)

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

    def _maintenance_interval(self) -> float:
        intervals = [
            ns.policy.stampede.refresh_ahead.check_interval
            for ns in self.namespaces().values()
            if ns.policy.stampede.refresh_ahead is not None
        ]
        return min(intervals, default=MAINTENANCE_INTERVAL)

    async def _maintenance_loop(self) -> None:
        while not self._closed:
            now = self._clock()
            for ns in self.namespaces().values():
                try:
                    await ns.maintain(now)
                except Exception:  # a maintenance pass must never kill the service
                    logger.exception("maintenance failed for namespace %s", ns.name)
            await self._maintenance_wake.wait(self._maintenance_interval())

    async def aclose(self) -> None:
        """Stop the services, snapshot hot keys, wait for background loads, release stores."""
        with self._lock:
            self._closed = True
            namespaces = list(self._namespaces.values())
        self._maintenance_wake.set()
        await self._runtime.stop_services()
        await self._runtime.aclose()
        await self._lease_keeper.aclose()
        for ns in namespaces:
            await ns.aclose()
        if self._backplane is not None:
            await self._backplane.aclose()
        for backend in self._journal_backends:
            backend.close()  # sync backends, made for the journals
        if self._redis is not None:
            await self._redis.aclose()

    async def __aenter__(self) -> AsyncCache:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
