"""The asyncio facade: ``AsyncCache`` and ``AsyncNamespace``, the same names as the sync ones.

Decisions come from the same ``NamespaceCore``; only waiting differs. An in-process store
is called directly (its calls never block), a network store is awaited.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import random as random_module
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

from steadycache._core.durations import Duration
from steadycache._core.entry import Entry
from steadycache._core.freshness import Action, RandomSource
from steadycache._decorating import KeyFunction, call_key
from steadycache._namespace_core import Clock, NamespaceCore, Scope, TraceSink, logger, store_for
from steadycache.errors import LoaderError, LoadTimeoutError, UsageError
from steadycache.observability.stats import NamespaceStats
from steadycache.policy import Policy
from steadycache.stampede.single_flight import AsyncFlightTable
from steadycache.stores.base import AsyncStore, Store

P = ParamSpec("P")
T = TypeVar("T")


class AsyncNamespace:
    """One namespace for asyncio code. Use it from one event loop."""

    def __init__(self, core: NamespaceCore, store: Store | AsyncStore, cache: AsyncCache) -> None:
        self._core = core
        self._store = store
        # Exactly one of these is set: the hot path tests it instead of awaiting a no-op.
        self._local: Store | None = store if store.in_process else None  # type: ignore[assignment]
        self._remote: AsyncStore | None = None if self._local is not None else store  # type: ignore[assignment]
        self._cache = cache
        self._flights = AsyncFlightTable()

    @property
    def name(self) -> str:
        """The namespace's name."""
        return self._core.name

    @property
    def policy(self) -> Policy:
        """The ten decisions this namespace runs with."""
        return self._core.policy

    @property
    def store(self) -> Store | AsyncStore:
        """The store holding this namespace's entries."""
        return self._store

    async def _fetch(self, stored: str) -> Entry | None:
        if self._local is not None:
            return self._local.get(stored)
        assert self._remote is not None
        return await self._remote.get(stored)

    async def _put(self, stored: str, entry: Entry) -> None:
        if self._local is not None:
            self._local.set(stored, entry)
        else:
            assert self._remote is not None
            await self._remote.set(stored, entry)

    # --- cache-aside ------------------------------------------------------------------

    async def get(self, key: object, default: Any = None, *, scope: Scope = None) -> Any:
        """The cached value, or ``default`` (see ``Namespace.get``)."""
        stored = self._core.key(key, scope)
        local = self._local
        entry = local.get(stored) if local is not None else await self._fetch(stored)
        if self._core.classify(stored, entry, can_refresh=False) is Action.SERVE:
            return entry.value  # type: ignore[union-attr]
        return default

    async def get_entry(self, key: object, *, scope: Scope = None) -> Entry | None:
        """The raw entry with its metadata (freshness not applied), or None."""
        return await self._fetch(self._core.key(key, scope))

    async def set(
        self,
        key: object,
        value: Any,
        *,
        scope: Scope = None,
        ttl: Duration | None = None,
        tags: Iterable[str] = (),
    ) -> None:
        """Store ``value``; bad keys, scope or values raise before anything is written."""
        stored = self._core.key(key, scope)
        await self._put(stored, self._core.make_entry(value, ttl=ttl, tags=tags))
        self._core.counters.sets += 1

    async def delete(self, key: object, *, scope: Scope = None) -> bool:
        """Remove the entry; whether one was there."""
        stored = self._core.key(key, scope)
        self._core.counters.deletes += 1
        if self._local is not None:
            return self._local.delete(stored)
        assert self._remote is not None
        return await self._remote.delete(stored)

    async def get_many(
        self, keys: Sequence[object], default: Any = None, *, scope: Scope = None
    ) -> list[Any]:
        """``get`` for several keys of one scope, in one store round trip."""
        stored = [self._core.key(key, scope) for key in keys]
        if self._local is not None:
            entries = self._local.get_many(stored)
        else:
            assert self._remote is not None
            entries = await self._remote.get_many(stored)
        values: list[Any] = []
        for stored_key, entry in zip(stored, entries, strict=True):
            action = self._core.classify(stored_key, entry, can_refresh=False)
            values.append(entry.value if action is Action.SERVE and entry else default)
        return values

    async def set_many(
        self,
        items: Mapping[object, Any],
        *,
        scope: Scope = None,
        ttl: Duration | None = None,
        tags: Iterable[str] = (),
    ) -> None:
        """``set`` for several keys; every value is validated before any is written."""
        tags = tuple(tags)
        prepared = {
            self._core.key(key, scope): self._core.make_entry(value, ttl=ttl, tags=tags)
            for key, value in items.items()
        }
        if self._local is not None:
            self._local.set_many(prepared)
        else:
            assert self._remote is not None
            await self._remote.set_many(prepared)
        self._core.counters.sets += len(prepared)

    async def invalidate_all(self) -> int:
        """Make every entry of this namespace unreachable (generation bump)."""
        old_prefix = self._core.bump_generation()
        delete_prefix = getattr(self._store, "delete_prefix", None)
        if delete_prefix is None:
            return 0
        result = delete_prefix(old_prefix)
        return int(await result) if inspect.isawaitable(result) else int(result)

    # --- read-through -----------------------------------------------------------------

    async def get_or_load(
        self,
        key: object,
        loader: Callable[[], Awaitable[T]],
        *,
        scope: Scope = None,
        ttl: Duration | None = None,
        tags: Iterable[str] = (),
    ) -> T:
        """The cached value, loading it with ``await loader()`` under the stampede policy."""
        core = self._core
        stored = core.key(key, scope)
        local = self._local
        entry = local.get(stored) if local is not None else await self._fetch(stored)
        action = core.classify(stored, entry)
        if action is Action.SERVE:
            return entry.value  # type: ignore[union-attr, no-any-return]
        if action is not Action.LOAD:
            self._refresh_in_background(stored, loader, ttl, tags)
            return entry.value  # type: ignore[union-attr, no-any-return]
        return await self._load(stored, loader, entry, ttl, tags)

    async def _load(
        self,
        stored: str,
        loader: Callable[[], Awaitable[T]],
        stale: Entry | None,
        ttl: Duration | None,
        tags: Iterable[str],
    ) -> T:
        core = self._core
        if not core.coalesces:
            return await self._run_loader(stored, loader, stale, ttl, tags)
        flight, leader = self._flights.join(stored)
        if leader:
            try:
                value = await self._run_loader(stored, loader, stale, ttl, tags)
            except BaseException as exc:
                flight.fail(exc)
                raise
            finally:
                self._flights.land(stored, flight)
            flight.succeed(value)
            return value
        core.counters.coalesced += 1
        core.counters.lock_waits += 1
        wait = core.single_flight_wait
        if not await flight.wait(wait if math.isfinite(wait) else 1e9):
            core.counters.wait_timeouts += 1
            if core.stale_for_error(stale):
                return stale.value  # type: ignore[union-attr, no-any-return]
            raise LoadTimeoutError(
                f"namespace {core.name!r}, key {stored!r}: waited {wait:g}s for another "
                "caller's load (SingleFlight wait_timeout)"
            )
        if flight.error is not None:
            cause = flight.error.__cause__ if isinstance(flight.error, LoaderError) else None
            if isinstance(flight.error, LoaderError) and cause is not None:
                raise LoaderError(core.name, stored, cause) from cause
            raise flight.error
        return flight.value  # type: ignore[no-any-return]

    async def _run_loader(
        self,
        stored: str,
        loader: Callable[[], Awaitable[T]],
        stale: Entry | None,
        ttl: Duration | None,
        tags: Iterable[str],
    ) -> T:
        core = self._core
        started = time.perf_counter()
        try:
            pending = loader()
            if not inspect.isawaitable(pending):
                raise UsageError(
                    f"AsyncNamespace.get_or_load needs an async loader; {loader!r} returned "
                    f"{type(pending).__name__}. Use Namespace (sync) for sync loaders"
                )
            value = await pending
        except UsageError:
            raise
        except Exception as exc:
            core.record_load(time.perf_counter() - started, failed=True)
            logger.warning("loader failed: namespace=%s key=%s error=%r", core.name, stored, exc)
            if core.stale_for_error(stale):
                return stale.value  # type: ignore[union-attr, no-any-return]
            raise LoaderError(core.name, stored, exc) from exc
        elapsed = time.perf_counter() - started
        core.record_load(elapsed, failed=False)
        await self._put(stored, core.make_entry(value, ttl=ttl, tags=tags, load_cost=elapsed))
        core.counters.sets += 1
        return value

    def _refresh_in_background(
        self,
        stored: str,
        loader: Callable[[], Awaitable[Any]],
        ttl: Duration | None,
        tags: Iterable[str],
    ) -> None:
        flight, leader = self._flights.join(stored)
        if not leader:
            return
        self._core.counters.background_refreshes += 1
        tags = tuple(tags)

        async def refresh() -> None:
            try:
                flight.succeed(await self._run_loader(stored, loader, None, ttl, tags))
            except BaseException as exc:  # counted and logged by _run_loader
                flight.fail(exc)
            finally:
                self._flights.land(stored, flight)

        self._cache._background(refresh())

    def stats(self) -> NamespaceStats:
        """Counters of this namespace and of its store tier(s)."""
        return self._core.stats((self._store.stats(),))


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
    ) -> None:
        self._clock = clock
        self._random = random
        self._key_secret = key_secret
        self._trace = trace
        self._store_factory = store_factory
        self._namespaces: dict[str, AsyncNamespace] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

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
            store = (
                self._store_factory(policy)
                if self._store_factory is not None
                else store_for(policy, self._clock)
            )
        namespace = AsyncNamespace(core, store, self)
        self._namespaces[name] = namespace
        return namespace

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
    ) -> Callable[[Callable[P, Coroutine[Any, Any, T]]], Callable[P, Coroutine[Any, Any, T]]]:
        """Decorate an ``async def``: read-through caching by its arguments (see ``Cache.cached``)."""
        ns = namespace if isinstance(namespace, AsyncNamespace) else self.namespace(namespace, policy)

        def decorate(
            function: Callable[P, Coroutine[Any, Any, T]],
        ) -> Callable[P, Coroutine[Any, Any, T]]:
            if not inspect.iscoroutinefunction(function):
                raise UsageError(
                    f"AsyncCache.cached cannot decorate sync function "
                    f"{getattr(function, '__qualname__', function)!r}: use Cache.cached"
                )
            split = call_key(function, ns.policy.security.scope.dimensions, key)

            async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
                key_parts, scope = split(args, kwargs)
                return await ns.get_or_load(
                    key_parts, lambda: function(*args, **kwargs), scope=scope, ttl=ttl
                )

            wrapper.__wrapped__ = function  # type: ignore[attr-defined]
            wrapper.__name__ = function.__name__
            wrapper.__qualname__ = function.__qualname__
            wrapper.__doc__ = function.__doc__
            wrapper.namespace = ns  # type: ignore[attr-defined]
            return wrapper

        return decorate

    def _background(self, refresh: Coroutine[Any, Any, None]) -> None:
        if self._closed:
            refresh.close()
            return
        task = asyncio.get_running_loop().create_task(refresh)
        # Keep a reference: the loop holds tasks only weakly.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Wait for background refreshes to finish and close stores."""
        self._closed = True
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for ns in self._namespaces.values():
            result = ns.store.close()
            if inspect.isawaitable(result):
                await result

    async def __aenter__(self) -> AsyncCache:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
