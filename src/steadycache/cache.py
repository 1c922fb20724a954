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
import math
import random as random_module
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from steadycache._core.durations import Duration
from steadycache._core.entry import Entry
from steadycache._core.freshness import Action, RandomSource
from steadycache._decorating import KeyFunction, call_key
from steadycache._namespace_core import (
    MISSING,
    Clock,
    NamespaceCore,
    Scope,
    TraceSink,
    logger,
    store_for,
)
from steadycache.errors import LoaderError, LoadTimeoutError, UsageError
from steadycache.observability.stats import NamespaceStats
from steadycache.policy import Policy
from steadycache.stampede.single_flight import FlightTable
from steadycache.stores.base import Store

P = ParamSpec("P")
T = TypeVar("T")

_REFRESH_WORKERS = 4


class Namespace:
    """One namespace: a policy, a key builder, a store and its counters (thread-safe)."""

    def __init__(self, core: NamespaceCore, store: Store, cache: Cache) -> None:
        self._core = core
        self._store = store
        self._cache = cache
        self._flights = FlightTable()

    @property
    def name(self) -> str:
        """The namespace's name (the first part of every stored key)."""
        return self._core.name

    @property
    def policy(self) -> Policy:
        """The ten decisions this namespace runs with."""
        return self._core.policy

    @property
    def store(self) -> Store:
        """The store holding this namespace's entries."""
        return self._store

    # --- cache-aside ------------------------------------------------------------------

    def get(self, key: object, default: Any = None, *, scope: Scope = None) -> Any:
        """The cached value, or ``default`` when absent, expired or chosen for early refresh.

        In cache-aside use the caller loads on ``default`` and calls ``set``; early refresh
        then means one caller (chosen at random, XFetch) reloads a little before expiry.
        """
        stored = self._core.key(key, scope)
        entry = self._store.get(stored)
        if self._core.classify(stored, entry, can_refresh=False) is Action.SERVE:
            return entry.value  # type: ignore[union-attr]
        return default

    def get_entry(self, key: object, *, scope: Scope = None) -> Entry | None:
        """The raw entry with its metadata (freshness not applied), or None."""
        return self._store.get(self._core.key(key, scope))

    def set(
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
        entry = self._core.make_entry(value, ttl=ttl, tags=tags)
        self._store.set(stored, entry)
        self._core.counters.sets += 1

    def delete(self, key: object, *, scope: Scope = None) -> bool:
        """Remove the entry; whether one was there."""
        self._core.counters.deletes += 1
        return self._store.delete(self._core.key(key, scope))

    def get_many(
        self, keys: Sequence[object], default: Any = None, *, scope: Scope = None
    ) -> list[Any]:
        """``get`` for several keys of one scope, in one store round trip."""
        stored = [self._core.key(key, scope) for key in keys]
        entries = self._store.get_many(stored)
        values: list[Any] = []
        for stored_key, entry in zip(stored, entries, strict=True):
            action = self._core.classify(stored_key, entry, can_refresh=False)
            values.append(entry.value if action is Action.SERVE and entry else default)
        return values

    def set_many(
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
        self._store.set_many(prepared)
        self._core.counters.sets += len(prepared)

    def invalidate_all(self) -> int:
        """Make every entry of this namespace unreachable (generation bump); entries dropped."""
        old_prefix = self._core.bump_generation()
        delete_prefix = getattr(self._store, "delete_prefix", None)
        return int(delete_prefix(old_prefix)) if delete_prefix is not None else 0

    # --- read-through -----------------------------------------------------------------

    def get_or_load(
        self,
        key: object,
        loader: Callable[[], T],
        *,
        scope: Scope = None,
        ttl: Duration | None = None,
        tags: Iterable[str] = (),
    ) -> T:
        """The cached value, loading it with ``loader()`` under the namespace's stampede policy."""
        core = self._core
        stored = core.key(key, scope)
        entry = self._store.get(stored)
        action = core.classify(stored, entry)
        if action is Action.SERVE:
            return entry.value  # type: ignore[union-attr, no-any-return]
        if action is not Action.LOAD:
            self._refresh_in_background(stored, loader, ttl, tags)
            return entry.value  # type: ignore[union-attr, no-any-return]
        return self._load(stored, loader, entry, ttl, tags)

    def _load(
        self,
        stored: str,
        loader: Callable[[], T],
        stale: Entry | None,
        ttl: Duration | None,
        tags: Iterable[str],
    ) -> T:
        core = self._core
        if not core.coalesces:
            return self._run_loader(stored, loader, stale, ttl, tags)
        flight, leader = self._flights.join(stored)
        if leader:
            try:
                value = self._run_loader(stored, loader, stale, ttl, tags)
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
        if not flight.wait(wait if math.isfinite(wait) else threading.TIMEOUT_MAX):
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
                # A fresh exception per waiter: one instance raised in many threads would
                # have its traceback rewritten by each of them.
                raise LoaderError(core.name, stored, cause) from cause
            raise flight.error
        return flight.value  # type: ignore[no-any-return]

    def _run_loader(
        self,
        stored: str,
        loader: Callable[[], T],
        stale: Entry | None,
        ttl: Duration | None,
        tags: Iterable[str],
    ) -> T:
        core = self._core
        started = time.perf_counter()
        try:
            value = loader()
        except Exception as exc:
            core.record_load(time.perf_counter() - started, failed=True)
            logger.warning("loader failed: namespace=%s key=%s error=%r", core.name, stored, exc)
            if core.stale_for_error(stale):
                return stale.value  # type: ignore[union-attr, no-any-return]
            raise LoaderError(core.name, stored, exc) from exc
        elapsed = time.perf_counter() - started
        core.record_load(elapsed, failed=False)
        self._store.set(stored, core.make_entry(value, ttl=ttl, tags=tags, load_cost=elapsed))
        core.counters.sets += 1
        return value

    def _refresh_in_background(
        self, stored: str, loader: Callable[[], Any], ttl: Duration | None, tags: Iterable[str]
    ) -> None:
        flight, leader = self._flights.join(stored)
        if not leader:
            return  # someone is already loading this key
        self._core.counters.background_refreshes += 1
        tags = tuple(tags)

        def refresh() -> None:
            try:
                flight.succeed(self._run_loader(stored, loader, None, ttl, tags))
            except BaseException as exc:  # counted and logged by _run_loader
                flight.fail(exc)
            finally:
                self._flights.land(stored, flight)

        self._cache._background(refresh)

    # --- observability ----------------------------------------------------------------

    def stats(self) -> NamespaceStats:
        """Counters of this namespace and of its store tier(s)."""
        return self._core.stats((self._store.stats(),))


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
    ) -> None:
        self._clock = clock
        self._random = random
        self._key_secret = key_secret
        self._trace = trace
        self._store_factory = store_factory
        self._namespaces: dict[str, Namespace] = {}
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False

    def namespace(self, name: str, policy: Policy | None = None, *, store: Store | None = None) -> Namespace:
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
                store = (
                    self._store_factory(policy)
                    if self._store_factory is not None
                    else store_for(policy, self._clock)
                )
            namespace = Namespace(core, store, self)
            self._namespaces[name] = namespace
            return namespace

    def namespaces(self) -> dict[str, Namespace]:
        """All namespaces by name."""
        return dict(self._namespaces)

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
    ) -> Callable[[Callable[P, T]], Callable[P, T]]:
        """Decorate a sync function: read-through caching of its result by its arguments.

        Arguments named like the namespace's scope dimensions become the scope; the others
        become the key, unless ``key(*args, **kwargs)`` says otherwise.
        """
        ns = namespace if isinstance(namespace, Namespace) else self.namespace(namespace, policy)

        def decorate(function: Callable[P, T]) -> Callable[P, T]:
            if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
                raise UsageError(
                    f"Cache.cached cannot decorate async function {function.__qualname__}: "
                    "use AsyncCache.cached"
                )
            split = call_key(function, ns.policy.security.scope.dimensions, key)

            def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
                key_parts, scope = split(args, kwargs)
                return ns.get_or_load(key_parts, lambda: function(*args, **kwargs), scope=scope, ttl=ttl)

            wrapper.__wrapped__ = function  # type: ignore[attr-defined]
            wrapper.__name__ = function.__name__
            wrapper.__qualname__ = function.__qualname__
            wrapper.__doc__ = function.__doc__
            wrapper.namespace = ns  # type: ignore[attr-defined]
            return wrapper

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
        """Wait for background refreshes to finish and release stores."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        for ns in self._namespaces.values():
            ns.store.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


__all__ = ["MISSING", "Cache", "Namespace"]
