"""``AsyncNamespace``: the asyncio twin of ``Namespace``, the same decisions, awaited I/O."""

from __future__ import annotations

import asyncio
import inspect
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from steadycache._core.durations import Duration
from steadycache._core.entry import Entry
from steadycache._core.freshness import LOAD, SERVE
from steadycache._core.marks import GENERATION_FIELD, LoadBasis, tag_field
from steadycache._namespace_base import NamespaceBase
from steadycache._namespace_core import NamespaceCore, Scope, logger
from steadycache._signals import RefreshSkipped, ServedStale
from steadycache.errors import (
    LoaderError,
    LoadTimeoutError,
    OriginOverloaded,
    StoreError,
    UsageError,
)
from steadycache.policy import WriteThrough
from steadycache.stampede.hot_keys import (
    SNAPSHOT_DOCUMENT,
    decode_snapshot,
    read_snapshot,
    write_text_atomically,
)
from steadycache.stampede.leases import (
    LEASE_EXPIRY_SLACK,
    LEASE_POLL_FIRST,
    LEASE_POLL_MAX,
    HeldLease,
)
from steadycache.stampede.origin import AsyncOriginLimiter
from steadycache.stampede.single_flight import AsyncFlight, AsyncFlightTable
from steadycache.stampede.warm import WarmReport, run_warm_up_async
from steadycache.stores.base import AsyncStore, Store, WriteOutcome

if TYPE_CHECKING:
    from steadycache.async_cache import AsyncCache

P = ParamSpec("P")
T = TypeVar("T")


class AsyncNamespace(NamespaceBase[Store | AsyncStore, Callable[[], Awaitable[Any]]]):
    """One namespace for asyncio code. Use it from one event loop."""

    def __init__(self, core: NamespaceCore, store: Store | AsyncStore, cache: AsyncCache) -> None:
        limit = core.policy.stampede.origin_limit
        limiter = None if limit is None else AsyncOriginLimiter(core.name, limit, core.clock)
        super().__init__(core, store, limiter)
        self._cache = cache
        self._flights = AsyncFlightTable()
        # Exactly one of these is set: the hot path tests it instead of awaiting a no-op.
        self._local: Store | None = store if store.in_process else None  # type: ignore[assignment]
        self._remote: AsyncStore | None = None if self._local is not None else store  # type: ignore[assignment]
        #: A namespace over a shared store starts (server check, backplane, the fleet's
        #: generation) before its first key is built: a key built with a generation the
        #: fleet has moved past would read entries invalidated before this process began.
        self._started = self._remote is None
        self._start_lock = asyncio.Lock()

    async def start(self) -> None:
        """Check the shared server, join the backplane, read the shared generation and
        start the maintenance task. Runs on first use if ``AsyncCache.start()`` did not."""
        if self._started:
            return
        async with self._start_lock:
            if self._started:
                return
            start = getattr(self._store, "start", None)
            if start is not None:
                await start()
            if self._read_marks is not None:
                await self._refresh_generation()
                self._cache._ensure_maintenance()  # re-reads the generation every second
            self._started = True

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
        if not self._started:
            await self.start()
        stored = self._core.keys.build(key, scope)
        local = self._local
        now = self._core.clock()
        entry = local.get(stored, now) if local is not None else await self._fetch(stored)
        if entry is not None and entry.tags:
            entry = await self._confirmed(entry)
        if self._core.classify(stored, entry, now, can_refresh=False) is SERVE:
            if self._auditor is not None:
                self._offer_audit(key, scope, entry)
            return entry.value  # type: ignore[union-attr]
        return default

    async def get_entry(self, key: object, *, scope: Scope = None) -> Entry | None:
        """The raw entry with its metadata (freshness not applied), or None (see
        ``Namespace.get_entry``)."""
        if not self._started:
            await self.start()
        return await self._confirmed(await self._fetch(self._core.keys.build(key, scope)))

    async def set(
        self,
        key: object,
        value: Any,
        *,
        scope: Scope = None,
        ttl: Duration | None = None,
        tags: Iterable[str] = (),
        load_cost: float = 0.0,
    ) -> None:
        """Store ``value``; bad keys, scope or values raise before anything is written.

        ``load_cost`` (seconds it took to produce the value) lets early refresh pick a
        reader to reload before expiry, as it does for values loaded through the cache.
        """
        if not self._started:
            await self.start()
        stored = self._core.keys.build(key, scope)
        tags = self._core.tags(tags)
        self._core.ttl_override(ttl)
        await self._confirm(tags)
        await self._put(
            stored, self._core.make_entry(value, ttl=ttl, tags=tags, load_cost=load_cost)
        )
        self._core.counters.sets += 1

    async def delete(self, key: object, *, scope: Scope = None) -> bool:
        """Invalidate one key in every process (see ``Namespace.delete``)."""
        if not self._started:
            await self.start()
        stored = self._core.keys.build(key, scope)
        self._core.counters.deletes += 1
        self._core.note_change(stored)
        return await self._remove(stored)

    async def invalidate(self, key: object, *, scope: Scope = None) -> bool:
        """``delete``, counted as an invalidation (see ``Namespace.invalidate``)."""
        if not self._started:
            await self.start()
        stored = self._core.keys.build(key, scope)
        self._core.counters.invalidations += 1
        self._core.note_change(stored)
        return await self._remove(stored)

    async def _remove(self, stored: str) -> bool:
        if self._local is not None:
            return self._local.delete(stored)
        assert self._remote is not None
        return await self._remote.delete(stored)

    async def get_many(
        self, keys: Sequence[object], default: Any = None, *, scope: Scope = None
    ) -> list[Any]:
        """``get`` for several keys of one scope, in one store round trip."""
        if not self._started:
            await self.start()
        stored = [self._core.keys.build(key, scope) for key in keys]
        if self._local is not None:
            entries = self._local.get_many(stored)
        else:
            assert self._remote is not None
            entries = await self._remote.get_many(stored)
        entries = [await self._confirmed(entry) for entry in entries]
        values: list[Any] = []
        for stored_key, entry in zip(stored, entries, strict=True):
            action = self._core.classify(stored_key, entry, self._core.clock(), can_refresh=False)
            values.append(entry.value if action is SERVE and entry else default)
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
        if not self._started:
            await self.start()
        tags = self._core.tags(tags)
        self._core.ttl_override(ttl)
        await self._confirm(tags)
        prepared = {
            self._core.keys.build(key, scope): self._core.make_entry(value, ttl=ttl, tags=tags)
            for key, value in items.items()
        }
        if self._local is not None:
            self._local.set_many(prepared)
        else:
            assert self._remote is not None
            await self._remote.set_many(prepared)
        self._core.counters.sets += len(prepared)

    async def invalidate_all(self) -> int:
        """Invalidate every entry in every process (see ``Namespace.invalidate_all``)."""
        if not self._started:
            await self.start()
        core = self._core
        if self._bump_mark is None:
            return self._generation_moved(core.bump_generation())
        generation = await self._bump_mark(GENERATION_FIELD, core.generation)
        return self._generation_moved(core.learn_generation(generation))

    async def invalidate_tag(self, tag: str) -> int:
        """Invalidate every entry tagged ``tag`` (see ``Namespace.invalidate_tag``)."""
        if not self._started:
            await self.start()
        floor = self._tag_floor(tag)
        if self._bump_mark is None:
            return self._tag_bumped(tag, None)
        return self._tag_bumped(tag, await self._bump_mark(tag_field(tag), floor))

    async def _refresh_generation(self) -> None:
        core = self._core
        try:
            (generation,) = await self._read_marks([GENERATION_FIELD])
            if generation < core.generation:
                # The shared tier lost it (a restart): carry ours forward for the fleet.
                generation = await self._raise_mark(GENERATION_FIELD, core.generation)
        except StoreError as error:
            self._marks_unreadable("generation", error)
            return
        core.learn_generation(generation)

    def _marks_due(self) -> None:
        self._cache._background(self._refresh_generation())

    async def _confirmed(self, entry: Entry | None) -> Entry | None:
        if entry is None or not entry.tags:
            return entry
        await self._confirm(entry.tags)
        return self._core.current(entry)

    async def _confirm(self, tags: Sequence[str]) -> None:
        """Read from the shared tier the counters of ``tags`` not confirmed lately."""
        unconfirmed = self._unconfirmed(tags)
        if not unconfirmed:
            return
        try:
            counters = await self._read_marks([tag_field(tag) for tag in unconfirmed])
        except StoreError as error:
            self._marks_unreadable("tag counters", error)
            return
        self._tags_read(unconfirmed, counters)

    # --- write-through and write-behind -------------------------------------------------

    async def write(
        self,
        key: object,
        value: Any,
        *,
        writer: Callable[[Any], Awaitable[object]] | None = None,
        scope: Scope = None,
        ttl: Duration | None = None,
        tags: Iterable[str] = (),
    ) -> Any:
        """Write ``value`` under the namespace's pattern (see ``Namespace.write``); the
        write-through ``writer`` is awaited, the write-behind journal runs in a thread."""
        if not self._started:
            await self.start()
        core = self._core
        pattern = self._write_pattern(writer)
        stored = core.keys.build(key, scope)
        tags = core.tags(tags)
        core.ttl_override(ttl)
        if isinstance(pattern, WriteThrough):
            assert writer is not None
            update = pattern.on_write == "update"
            if update:
                await self._confirm(tags)
                core.make_entry(value, ttl=ttl, tags=tags)  # refuse a bad value before writing
            try:
                await writer(value)
            except Exception:
                self._writer_failed(stored)
                raise
            # Versions taken from here on are newer than any load already in flight.
            core.note_change(stored)
            if update:
                await self._put(stored, core.make_entry(value, ttl=ttl, tags=tags))
            else:
                await self._remove(stored)
            core.counters.writes += 1
            return None
        await self._confirm(tags)
        entry = core.make_entry(value, ttl=ttl, tags=tags)
        record = await asyncio.to_thread(self._journal_append, key, scope, value, stored)
        core.note_change(stored)
        try:
            await self._put(stored, entry)
        except StoreError as error:
            self._cache_write_failed(error)
        return record

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
        """The cached value, loading it with ``await loader()`` under the stampede policy.

        Bad input (key, scope, ``ttl``, ``tags``) raises before the store or the loader runs.
        """
        if not self._started:
            await self.start()
        core = self._core
        stored = core.keys.build(key, scope)
        checked: tuple[str, ...] = ()
        if ttl is not None or tags:
            core.ttl_override(ttl)
            checked = core.tags(tags)
        local = self._local
        now = core.clock()
        entry = local.get(stored, now) if local is not None else await self._fetch(stored)
        if entry is not None and entry.tags:
            entry = await self._confirmed(entry)
        action = core.classify(stored, entry, now)
        if self._watches_reads:
            self._note_read(stored, key, scope, loader, ttl, checked, entry)
            self._cache._ensure_maintenance()
        if action is SERVE:
            if self._auditor is not None:
                self._offer_audit(key, scope, entry)
            return entry.value  # type: ignore[union-attr, no-any-return]
        if action is not LOAD:
            self._refresh_in_background(stored, loader, ttl, checked, entry.stored_at)  # type: ignore[union-attr]
            return entry.value  # type: ignore[union-attr, no-any-return]
        return await self._load(stored, loader, entry, ttl, checked)

    async def _load(
        self,
        stored: str,
        loader: Callable[[], Awaitable[T]],
        stale: Entry | None,
        ttl: Duration | None,
        tags: tuple[str, ...],
    ) -> T:
        core = self._core
        if not core.coalesces:
            return await self._load_once(stored, loader, stale, ttl, tags, None)
        flight, leader = self._flights.join(stored)
        if leader:
            try:
                landed = self._landed_since(stored, stale)
                value: T
                if landed is not None:
                    value = landed.value  # another caller's load landed just before ours
                else:
                    value = await self._load_once(stored, loader, stale, ttl, tags, flight)
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
        if isinstance(flight.error, RefreshSkipped):
            return await self._load(stored, loader, stale, ttl, tags)  # a refresh found a lease
        if flight.error is not None:
            if core.stale_for_error(stale):
                return stale.value  # type: ignore[union-attr, no-any-return]
            cause = flight.error.__cause__ if isinstance(flight.error, LoaderError) else None
            if isinstance(flight.error, LoaderError) and cause is not None:
                raise LoaderError(core.name, stored, cause) from cause
            raise flight.error
        return flight.value  # type: ignore[no-any-return]

    async def _load_once(
        self,
        stored: str,
        loader: Callable[[], Awaitable[T]],
        stale: Entry | None,
        ttl: Duration | None,
        tags: tuple[str, ...],
        flight: AsyncFlight | None,
    ) -> T:
        if self._leases is None:
            return await self._run_loader(stored, loader, stale, ttl, tags)
        return await self._load_with_lease(stored, loader, stale, ttl, tags, flight)

    async def _load_with_lease(
        self,
        stored: str,
        loader: Callable[[], Awaitable[T]],
        stale: Entry | None,
        ttl: Duration | None,
        tags: tuple[str, ...],
        flight: AsyncFlight | None = None,
    ) -> T:
        """Fleet-wide single-flight (see ``Namespace._load_with_lease``)."""
        leases = self._leases
        core = self._core
        clock = self._cache._clock
        deadline = time.monotonic() + core.single_flight_wait
        pause = LEASE_POLL_FIRST
        while True:
            try:
                token, holder_left = await leases.claim_lease(stored, self._lease_ttl)
            except StoreError as error:
                core.counters.store_errors += 1
                logger.warning("lease unavailable, loading without it: %s", error)
                return await self._run_loader(stored, loader, stale, ttl, tags)
            if token is not None:
                seen = stale.stored_at if stale is not None else float("-inf")
                current = await self._confirmed(await self._shared_or_none(stored))
                if self._fresher_than(current, seen):
                    # Written by another process between our read and our lease.
                    await self._release_lease(stored, token)
                    return current.value  # type: ignore[union-attr, no-any-return]
                if flight is not None:
                    flight.loading()  # our followers' wait counts from now
                return await self._run_loader(stored, loader, stale, ttl, tags, lease=token)
            core.counters.lease_waits += 1
            if stale is not None and stale.stale_until > clock():
                core.counters.stale_served += 1
                return stale.value  # type: ignore[no-any-return]
            now = time.monotonic()
            if now >= deadline:
                core.counters.wait_timeouts += 1
                if core.stale_for_error(stale):
                    return stale.value  # type: ignore[union-attr, no-any-return]
                raise LoadTimeoutError(
                    f"namespace {core.name!r}, key {stored!r}: another process held the "
                    f"lease and produced no value within {core.single_flight_wait:g}s "
                    "(SingleFlight wait_timeout)"
                )
            await asyncio.sleep(min(pause, holder_left + LEASE_EXPIRY_SLACK, deadline - now))
            pause = min(pause * 2, LEASE_POLL_MAX)
            try:
                entry = await self._confirmed(await leases.get_shared(stored))
            except StoreError as error:
                core.counters.store_errors += 1
                logger.warning("shared tier unavailable while waiting for a lease: %s", error)
                return await self._run_loader(stored, loader, stale, ttl, tags)
            if entry is not None and entry.fresh_until > clock():
                return entry.value  # type: ignore[no-any-return]

    async def _shared_or_none(self, stored: str) -> Entry | None:
        try:
            return await self._leases.get_shared(stored)  # type: ignore[no-any-return]
        except StoreError as error:
            self._core.counters.store_errors += 1
            logger.warning("shared tier unavailable after winning a lease: %s", error)
            return None

    async def _run_loader(
        self,
        stored: str,
        loader: Callable[[], Awaitable[T]],
        stale: Entry | None,
        ttl: Duration | None,
        tags: tuple[str, ...],
        lease: str | None = None,
    ) -> T:
        """Await the loader within the origin budget and timeouts, then store its value.

        A lease is renewed while the loader runs and spent however the load ends,
        cancellation included (see ``Namespace._run_loader``).
        """
        if lease is None:
            return await self._load_and_store(stored, loader, stale, ttl, tags, None)
        held = self._cache._lease_keeper().hold(self._leases, stored, lease, self._lease_ttl)
        try:
            return await self._load_and_store(stored, loader, stale, ttl, tags, held)
        finally:
            if not held.detached:
                await self._spend(held)

    async def _load_and_store(
        self,
        stored: str,
        loader: Callable[[], Awaitable[T]],
        stale: Entry | None,
        ttl: Duration | None,
        tags: tuple[str, ...],
        held: HeldLease | None,
    ) -> T:
        core = self._core
        limiter = self._limiter
        if limiter is not None:
            try:
                await limiter.acquire()
            except OriginOverloaded:
                core.counters.origin_rejections += 1
                logger.warning(
                    "origin limiter refused a load: namespace=%s key=%s", core.name, stored
                )
                if core.stale_for_error(stale):
                    return stale.value  # type: ignore[union-attr, no-any-return]
                raise
        clock = self._cache._clock
        await self._confirm(tags)
        basis = core.begin_load(tags)
        started = clock()
        failed = True
        try:
            pending = loader()
            if not inspect.isawaitable(pending):
                raise UsageError(
                    f"AsyncNamespace.get_or_load needs an async loader; {loader!r} returned "
                    f"{type(pending).__name__}. Use Namespace (sync) for sync loaders"
                )
            if self._timeouts is None:
                value = await pending
            else:
                value = await self._await_with_timeouts(
                    stored, pending, stale, ttl, basis, started, held
                )
            failed = False
        except UsageError:
            raise
        except LoadTimeoutError:
            core.record_load(clock() - started, failed=True)
            if core.stale_for_error(stale):
                return stale.value  # type: ignore[union-attr, no-any-return]
            raise
        except ServedStale as served:
            failed = False
            return served.value  # type: ignore[no-any-return]
        except Exception as exc:
            core.record_load(clock() - started, failed=True)
            logger.warning("loader failed: namespace=%s key=%s error=%r", core.name, stored, exc)
            if core.stale_for_error(stale):
                return stale.value  # type: ignore[union-attr, no-any-return]
            raise LoaderError(core.name, stored, exc) from exc
        finally:
            if limiter is not None:
                limiter.release(failed=failed)
        await self._store_loaded(stored, value, ttl, basis, clock() - started, held)
        return value

    async def _spend(self, held: HeldLease) -> None:
        """Stop renewing ``held`` and give it back, unless a write already took it."""
        if held.spend():
            await self._release_lease(held.key, held.token)

    async def _release_lease(self, stored: str, lease: str) -> None:
        try:
            await self._leases.release_lease(stored, lease)
        except StoreError as error:  # it expires by itself after lease_ttl
            self._core.counters.store_errors += 1
            logger.warning("lease release failed (it will expire): %s", error)

    async def _store_loaded(
        self,
        stored: str,
        value: Any,
        ttl: Duration | None,
        basis: LoadBasis,
        elapsed: float,
        held: HeldLease | None,
    ) -> None:
        """Store a loaded value (see ``Namespace._store_loaded``)."""
        core = self._core
        core.record_load(elapsed, failed=False)
        if not core.landed(stored, basis):
            return  # invalidated or written while loading: this value may predate it
        entry = core.make_entry(value, ttl=ttl, load_cost=elapsed, basis=basis)
        if held is None:
            await self._put(stored, entry)
        else:
            held.spend()  # the write takes the lease, whatever it decides
            try:
                outcome = await self._leases.write_leased(stored, entry, held.token)
            except StoreError as error:
                core.counters.store_errors += 1
                logger.warning("leased write failed: namespace=%s error=%s", core.name, error)
                await self._release_lease(stored, held.token)
                return
            if outcome is not WriteOutcome.WRITTEN:
                core.refused_write(outcome)
                return
        core.counters.sets += 1
        if self._schedule is not None:
            self._schedule.loaded(stored, entry.stored_at, entry.fresh_until)

    async def _await_with_timeouts(
        self,
        stored: str,
        pending: Awaitable[T],
        stale: Entry | None,
        ttl: Duration | None,
        basis: LoadBasis,
        started: float,
        held: HeldLease | None,
    ) -> T:
        timeouts = self._timeouts
        assert timeouts is not None
        task: asyncio.Future[T] = asyncio.ensure_future(pending)
        if timeouts.soft is not None and stale is not None:
            try:
                return await asyncio.wait_for(asyncio.shield(task), timeouts.soft)
            except TimeoutError:
                self._core.counters.soft_timeouts += 1
                self._core.counters.stale_served += 1
                if held is not None:
                    held.detached = True  # the late load owns the lease now
                self._cache._background(
                    self._finish_late_load(stored, task, ttl, basis, started, held)
                )
                raise ServedStale(stale.value) from None
        try:
            return await asyncio.wait_for(task, timeouts.hard)
        except TimeoutError:
            self._core.counters.hard_timeouts += 1
            raise LoadTimeoutError(
                f"namespace {self._core.name!r}, key {stored!r}: loader still running after "
                f"the hard timeout of {timeouts.hard:g}s"
            ) from None

    async def _finish_late_load(
        self,
        stored: str,
        task: asyncio.Future[Any],
        ttl: Duration | None,
        basis: LoadBasis,
        started: float,
        held: HeldLease | None,
    ) -> None:
        try:
            try:
                value = await task
            except Exception as exc:
                self._core.record_load(self._cache._clock() - started, failed=True)
                logger.warning(
                    "late load failed: namespace=%s key=%s error=%r", self.name, stored, exc
                )
                return
            await self._store_loaded(
                stored, value, ttl, basis, self._cache._clock() - started, held
            )
        except Exception:  # nobody waits for this load any more: log, never raise
            logger.exception("late load not stored: namespace=%s key=%s", self.name, stored)
        finally:
            if held is not None:
                await self._spend(held)

    def _refresh_in_background(
        self,
        stored: str,
        loader: Callable[[], Awaitable[Any]],
        ttl: Duration | None,
        tags: Iterable[str],
        seen_stored_at: float,
    ) -> None:
        blocked_until = self._core.refresh_blocked_until(stored)
        if blocked_until is not None:
            # The origin failed this key's last refresh: back off, serve what we have.
            if self._schedule is not None:
                self._schedule.retry(stored, blocked_until)
            return
        flight, leader = self._flights.join(stored)
        if not leader:
            return  # someone is already loading this key
        peek = getattr(self._store, "peek", None)
        if peek is not None and self._fresher_than(peek(stored), seen_stored_at):
            # A refresh landed between this caller's read and now: nothing to do.
            self._core.counters.refreshes_skipped += 1
            self._flights.land(stored, flight)
            flight.fail(RefreshSkipped())
            return
        self._core.counters.background_refreshes += 1
        tags = self._core.tags(tags)

        async def refresh() -> None:
            try:
                lease = None
                if self._leases is not None:
                    try:
                        lease = await self._leases.acquire_lease(stored, self._lease_ttl)
                    except StoreError as error:
                        logger.warning("refresh without lease (shared tier failed): %s", error)
                    else:
                        if lease is None or self._fresher_than(
                            await self._shared_or_none(stored), seen_stored_at
                        ):
                            # Another process is refreshing, or has just refreshed, this
                            # key: one refresh per fleet.
                            if lease is not None:
                                await self._release_lease(stored, lease)
                            self._core.counters.refreshes_skipped += 1
                            flight.fail(RefreshSkipped())
                            return
                value = await self._run_loader(stored, loader, None, ttl, tags, lease=lease)
                flight.succeed(value)
                self._core.refresh_succeeded(stored)
            except BaseException as exc:  # counted and logged by _run_loader
                flight.fail(exc)
                retry_at = self._core.refresh_failed(stored)
                if self._schedule is not None:
                    self._schedule.retry(stored, retry_at)
            finally:
                self._flights.land(stored, flight)

        self._cache._background(refresh())

    # --- refresh-ahead and cold start --------------------------------------------------

    async def snapshot_hot_keys(self) -> int:
        """Write the hot-key snapshot now (also periodically and at close); keys written."""
        document = self._snapshot_document()
        if document is None:
            return 0
        text, count = document
        if self._snapshot_file is not None:
            write_text_atomically(self._snapshot_file, text)
        elif self._snapshot_shared:
            try:
                await self._store.put_document(SNAPSHOT_DOCUMENT, text)  # type: ignore[union-attr]
            except StoreError as error:
                logger.warning("hot-key snapshot not written to the shared tier: %s", error)
                return 0
        else:
            return 0
        return count

    def _snapshot_due(self) -> None:
        self._cache._background(self._snapshot_quietly())

    async def _snapshot_quietly(self) -> None:
        await self.snapshot_hot_keys()

    async def _read_snapshot(self) -> list[tuple[Any, Any]] | None:
        if self._snapshot_file is not None:
            return read_snapshot(self._snapshot_file, self.name)
        if self._snapshot_shared:
            try:
                text = await self._store.get_document(SNAPSHOT_DOCUMENT)  # type: ignore[union-attr]
            except StoreError as error:
                logger.warning("hot-key snapshot unreadable in the shared tier: %s", error)
                text = None
            return decode_snapshot(text, self.name)
        return None

    async def warm(
        self,
        items: Iterable[tuple[object, Callable[[], Awaitable[Any]]]] | None = None,
        *,
        loader_for: Callable[[object, Any], Callable[[], Awaitable[Any]]] | None = None,
        concurrency: int | None = None,
        rate: float | None = None,
        deadline: float | None = None,
    ) -> WarmReport:
        """Load keys before traffic arrives (see ``Namespace.warm``)."""
        snapshot = await self._read_snapshot() if items is None else None
        settings, work = self._warm_plan(items, loader_for, snapshot)
        return await run_warm_up_async(
            self,
            work,
            concurrency=concurrency or settings.concurrency,
            rate=rate if rate is not None else settings.rate,
            deadline=deadline if deadline is not None else settings.deadline,
            target=settings.target,
            readiness=self._cache.readiness,
        )
