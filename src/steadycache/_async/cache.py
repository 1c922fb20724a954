"""The cache facade: namespaces sharing a clock, a random source, a runtime and a server.

::

    cache = AsyncCache()
    seats = cache.namespace("seats", Policy(pattern=ReadThrough(), invalidation=Ttl(60)))
    free = await seats.get_or_load(("workshop", 42), lambda: db.free_seats(42))

    @cache.cached                       # the "default" namespace, Policy()
    async def price(sku: str) -> int: ...

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
from typing import Any, ClassVar, ParamSpec, TypeVar, overload

from steadycache._async.assembly import assemble
from steadycache._async.cached import AsyncCachedCallable
from steadycache._async.namespace import AsyncNamespace
from steadycache._core.durations import Duration
from steadycache._core.freshness import RandomSource
from steadycache._decorating import (
    DEFAULT_NAMESPACE,
    AsyncCachedFunction,
    AsyncDecorated,
    Binding,
    KeyFunction,
    call_key,
    check_kind_async,
    is_decoratable,
    unwrap_method,
)
from steadycache._runtime import AsyncEvent, AsyncRuntime
from steadycache._state import Clock, NamespaceState, TraceSink
from steadycache.errors import UsageError
from steadycache.invalidation._async.backplane import AsyncBackplane
from steadycache.observability.stats import CacheStats
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

    #: Where a bare ``@cache.cached`` keeps its results.
    DEFAULT_NAMESPACE: ClassVar[str] = DEFAULT_NAMESPACE

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

    def stats(self) -> CacheStats:
        """A snapshot of every namespace: ``stats["seats"]`` is ``seats.stats()``, and
        ``stats.hits``, ``stats.counters`` and ``stats.hit_ratio`` are their totals, read
        as one namespace's are."""
        return CacheStats.of({name: ns.stats() for name, ns in self.namespaces().items()})

    @overload
    def cached(self, namespace: AsyncDecorated[P, T], /) -> AsyncCachedFunction[P, T]: ...
    @overload
    def cached(
        self,
        namespace: str | AsyncNamespace | None = None,
        policy: Policy | None = None,
        *,
        key: KeyFunction | None = None,
        ttl: Duration | None = None,
        instance_key: Callable[[Any], object] | None = None,
    ) -> Callable[[AsyncDecorated[P, T]], AsyncCachedFunction[P, T]]: ...

    def cached(
        self,
        namespace: Any = None,
        policy: Policy | None = None,
        *,
        key: KeyFunction | None = None,
        ttl: Duration | None = None,
        instance_key: Callable[[Any], object] | None = None,
    ) -> Any:
        """Decorate a function: read-through caching of its result by its arguments.

        ``@cache.cached`` (bare, or with ``()``) keeps results in the namespace
        ``"default"`` (``DEFAULT_NAMESPACE``, created with ``Policy()`` unless it exists);
        ``@cache.cached("profile", Policy(...))`` or ``@cache.cached(namespace)`` in another.

        The stored key of a call is ``namespace.stored_key((f"{module}.{qualname}",
        *arguments), scope=...)``: the function's module and qualified name, then its
        arguments bound to its signature with defaults applied, in parameter order (so
        ``f(1)``, ``f(x=1)`` and ``f(1, flag=False)`` are one key). Arguments named like
        the namespace's scope dimensions become the scope instead. Each argument must be a
        key part (``_core/keys.py``: str, int, bool, bytes, None, float but not NaN, date,
        datetime, or tuples of them); anything else raises ``InvalidKeyError`` before the
        function runs. ``key(*args, **kwargs)`` replaces the module, name and arguments.

        Methods: called on an instance, ``self`` is not part of the key, so every instance
        shares one entry per arguments; give ``instance_key=lambda self: self.tenant`` when
        results differ per instance (``key=`` gets ``self`` too). Read from the class
        (``Repo.find(repo, 42)``) a method is a plain function and ``repo`` an argument like
        the others. A ``staticmethod`` is keyed like a function; a ``classmethod`` binds
        its class, not part of the key either, with ``@cache.cached`` written above
        ``@classmethod`` (below it, Python 3.13+ passes the class as an argument).

        The result has ``.key(*args, **kwargs)`` (the stored key of that call),
        ``.invalidate(*args, **kwargs)`` and ``.namespace``; a method read from an
        instance has them too (``repo.find.key(42)``).
        """
        if is_decoratable(namespace):
            if policy is not None or key is not None or ttl is not None or instance_key is not None:
                raise UsageError(
                    "cached(): name the namespace first, cached('name', policy, ...), or "
                    "use bare @cache.cached on the function"
                )
            return self.cached()(namespace)
        if namespace is not None and not isinstance(namespace, str | AsyncNamespace):
            raise UsageError(f"cached() takes a namespace name or namespace, got {namespace!r}")
        if namespace is None:
            namespace = DEFAULT_NAMESPACE
        ns = (
            namespace
            if isinstance(namespace, AsyncNamespace)
            else self.namespace(namespace, policy)
        )
        ns.check_lifetime(ttl)  # a bad or too-long ttl fails here, at import
        ns.check_loads("@cached")  # a cache-aside namespace has no loader to call

        def decorate(decorated: Any) -> AsyncCachedCallable:
            function, binding = unwrap_method(decorated)
            check_kind_async(function)
            if binding is Binding.STATIC and instance_key is not None:
                raise UsageError(f"{function.__qualname__} is a staticmethod: no instance to key")
            calls = call_key(function, ns.policy.security.scope.dimensions, key, instance_key)
            ns.claim_function(function, key)
            return AsyncCachedCallable(function, ns, calls, ttl=ttl, binding=binding)

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
