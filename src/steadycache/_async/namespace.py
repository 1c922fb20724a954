"""A namespace: where a caller reads and writes, under one namespace's policy.

A read goes: key (``_state``) -> the store -> a freshness decision (``_state.classify``)
-> on a miss, single-flight (``flights``) -> the fleet lease (``parts.leases``) -> the
origin limiter -> the loader -> the store. Background refreshes, refresh-ahead and warm-up
take the same path. Every decision is the state's; this module only does the I/O around
them, and waits through the runtime (``_runtime.py``): it is the one source of both the
asyncio ``AsyncNamespace`` and, generated from it, the threads' ``Namespace``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from steadycache._async.assembly import AsyncParts
from steadycache._core.durations import Duration
from steadycache._core.entry import Entry
from steadycache._core.freshness import LOAD, SERVE
from steadycache._core.marks import GENERATION_FIELD, LoadBasis, tag_field
from steadycache._decorating import claim_identity
from steadycache._runtime import AsyncLoader, AsyncLock, AsyncRuntime, AsyncWriter
from steadycache._signals import RefreshSkipped, ServedStale
from steadycache._state import REREAD_GENERATION, SNAPSHOT, NamespaceState, Refresh, Scope, logger
from steadycache.errors import (
    LoaderError,
    LoadTimeoutError,
    OriginOverloaded,
    StoreError,
    UsageError,
)
from steadycache.observability.stats import NamespaceStats
from steadycache.policy import Policy, SharedTiers, WriteBehind, WriteThrough
from steadycache.stampede._async.flights import AsyncFlight
from steadycache.stampede._async.lease_keeper import AsyncLeaseKeeper
from steadycache.stampede._async.warm import run_warm_up_async
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
from steadycache.stampede.readiness import Readiness
from steadycache.stampede.warm import WarmReport
from steadycache.stores._async.capabilities import AsyncStore
from steadycache.stores._sync.capabilities import Store
from steadycache.stores.base import WriteOutcome

T = TypeVar("T")


class AsyncNamespace:
    """One namespace: a policy, its key builder, its store and its counters."""

    def __init__(
        self,
        state: NamespaceState,
        parts: AsyncParts,
        *,
        runtime: AsyncRuntime,
        lease_keeper: AsyncLeaseKeeper,
        readiness: Readiness,
    ) -> None:
        self._state = state
        self._parts = parts
        self._runtime = runtime
        self._lease_keeper = lease_keeper
        self._readiness = readiness
        self._store = parts.store
        self._flights = parts.flights
        self._limiter = parts.limiter
        self._leases = parts.leases
        self._marks = parts.marks
        policy = state.policy
        self._timeouts = policy.stampede.timeouts
        consistency = policy.consistency
        self._lease_ttl = consistency.lease_ttl if isinstance(consistency, SharedTiers) else 0.0
        # Exactly one of these is set: the read path tests it instead of awaiting a no-op.
        self._local: Store | None = parts.store if parts.store.in_process else None  # type: ignore[assignment]
        self._remote: AsyncStore | None = None if self._local is not None else parts.store  # type: ignore[assignment]
        #: A namespace over a shared store starts (server check, backplane, the fleet's
        #: generation) before its first key is built: a key built with a generation the
        #: fleet has moved past would read entries invalidated before this process began.
        self._started = parts.shared is None and parts.marks is None
        self._start_lock = AsyncLock()
        #: A staleness auditor fed a sample of served reads (``audit_with``).
        self._auditor: Any = None
        #: ``module.qualname`` -> the function ``cached`` decorated under that identity.
        self._decorated: dict[str, Callable[..., Any]] = {}

    async def start(self) -> None:
        """Check the shared server, join the backplane and read the fleet's generation.

        Runs on first use if nobody called it (``cache.start()`` calls it for every
        namespace, from a start-up hook, so a refused server fails the deploy)."""
        if self._started:
            return
        async with self._start_lock:
            if self._started:
                return
            if self._parts.shared is not None:
                await self._parts.shared.start()
            if self._marks is not None:
                await self._refresh_generation()
            self._runtime.ensure_services()
            self._started = True

    # --- properties ---------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The namespace's name (the first part of every stored key)."""
        return self._state.name

    @property
    def policy(self) -> Policy:
        """The ten decisions this namespace runs with."""
        return self._state.policy

    @property
    def store(self) -> Store | AsyncStore:
        """The store holding this namespace's entries."""
        return self._store

    @property
    def journal(self) -> Any:
        """The write-behind journal a ``Flusher`` drains, or None for other patterns."""
        return self._parts.journal

    def check_lifetime(self, ttl: Duration | None) -> None:
        """Raise now if a per-call ``ttl`` is invalid here (``@cached`` checks at import)."""
        self._state.ttl_override(ttl)

    def check_loads(self, what: str) -> None:
        """Raise now if this namespace refuses loaders (an explicit ``CacheAside()``)."""
        self._state.check_loads(what)

    def claim_function(
        self, function: Callable[..., Any], key: Callable[..., object] | None
    ) -> None:
        """Refuse a second, different decorated function whose keys would be the first's."""
        claim_identity(self._decorated, function, self.name, key)

    def stored_key(self, key: object, *, scope: Scope = None) -> str:
        """The key as the stores hold it (namespace, generation, scope, key; or its digest)."""
        return self._state.keys.build(key, scope)

    # --- store access ---------------------------------------------------------------------

    async def _fetch(self, stored: str, now: float | None = None) -> Entry | None:
        if self._local is not None:
            return self._local.get(stored, now)
        assert self._remote is not None
        return await self._remote.get(stored, now)

    async def _put(self, stored: str, entry: Entry) -> None:
        if self._local is not None:
            self._local.set(stored, entry)
        else:
            assert self._remote is not None
            await self._remote.set(stored, entry)

    async def _remove(self, stored: str) -> bool:
        if self._local is not None:
            return self._local.delete(stored)
        assert self._remote is not None
        return await self._remote.delete(stored)

    # --- cache-aside ------------------------------------------------------------------

    async def get(self, key: object, default: Any = None, *, scope: Scope = None) -> Any:
        """The cached value, or ``default`` when absent, expired or chosen for early refresh.

        In cache-aside use the caller loads on ``default`` and calls ``set``; early refresh
        then means one caller (chosen at random, XFetch) reloads a little before expiry.
        """
        if not self._started:
            await self.start()
        state = self._state
        stored = state.keys.build(key, scope)
        local = self._local
        now = state.clock()
        entry = local.get(stored, now) if local is not None else await self._fetch(stored, now)
        if entry is not None and entry.tags:
            entry = await self._confirmed(entry)
        if state.classify(stored, entry, now, can_refresh=False) is SERVE:
            if self._auditor is not None:
                self._offer_audit(key, scope, entry)
            return entry.value  # type: ignore[union-attr]
        return default

    async def get_entry(self, key: object, *, scope: Scope = None) -> Entry | None:
        """The raw entry with its metadata (freshness not applied), or None.

        An entry one of whose tags was invalidated since it was loaded is None: it is
        never served."""
        if not self._started:
            await self.start()
        return await self._confirmed(await self._fetch(self._state.keys.build(key, scope)))

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
        state = self._state
        stored = state.keys.build(key, scope)
        checked = state.tags(tags)
        state.ttl_override(ttl)
        await self._confirm(checked)
        await self._put(stored, state.make_entry(value, ttl=ttl, tags=checked, load_cost=load_cost))
        state.counters.sets += 1

    async def delete(self, key: object, *, scope: Scope = None) -> bool:
        """Invalidate one key in every process; whether an entry was there.

        A load of the key that started before the delete cannot store its (older) value
        afterwards: in this process by the recent-change guard, across processes by the
        shared tier's lease."""
        if not self._started:
            await self.start()
        stored = self._state.keys.build(key, scope)
        self._state.counters.deletes += 1
        self._state.note_change(stored)
        return await self._remove(stored)

    async def invalidate(self, key: object, *, scope: Scope = None) -> bool:
        """``delete``, counted as an invalidation (``invalidations``): what events,
        database triggers and the invalidation bus do when the source changed."""
        if not self._started:
            await self.start()
        stored = self._state.keys.build(key, scope)
        self._state.counters.invalidations += 1
        self._state.note_change(stored)
        return await self._remove(stored)

    async def get_many(
        self, keys: Sequence[object], default: Any = None, *, scope: Scope = None
    ) -> list[Any]:
        """``get`` for several keys of one scope, in one store round trip."""
        if not self._started:
            await self.start()
        state = self._state
        stored = [state.keys.build(key, scope) for key in keys]
        if self._local is not None:
            found = self._local.get_many(stored)
        else:
            assert self._remote is not None
            found = await self._remote.get_many(stored)
        entries = [await self._confirmed(entry) for entry in found]
        values: list[Any] = []
        for stored_key, entry in zip(stored, entries, strict=True):
            action = state.classify(stored_key, entry, state.clock(), can_refresh=False)
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
        state = self._state
        checked = state.tags(tags)
        state.ttl_override(ttl)
        await self._confirm(checked)
        prepared = {
            state.keys.build(key, scope): state.make_entry(value, ttl=ttl, tags=checked)
            for key, value in items.items()
        }
        if self._local is not None:
            self._local.set_many(prepared)
        else:
            assert self._remote is not None
            await self._remote.set_many(prepared)
        state.counters.sets += len(prepared)

    # --- invalidation -------------------------------------------------------------------

    async def invalidate_all(self) -> int:
        """Invalidate every entry of this namespace in every process; L1 entries dropped here.

        A generation bump: every stored key carries the generation, so old entries become
        unreachable at once without scanning for them (they expire by their TTL). With a
        shared tier the generation lives in Redis and the backplane carries the bump to
        every process; a process that missed it re-reads the generation within a second.
        """
        if not self._started:
            await self.start()
        state = self._state
        if self._marks is None:
            return self._generation_moved(state.bump_generation())
        generation = await self._marks.bump_mark(GENERATION_FIELD, state.generation)
        return self._generation_moved(state.learn_generation(generation))

    def _generation_moved(self, old_prefix: str) -> int:
        """After a generation bump: drop this process's L1 entries of the old generation."""
        local = self._parts.local
        return local.delete_prefix(old_prefix) if local is not None else 0

    async def invalidate_tag(self, tag: str) -> int:
        """Invalidate every entry tagged ``tag``, in every process; the tag's new counter.

        No key is scanned: the tag's counter moves on, and entries recorded with an older
        counter are refused at read time. Raises ``StoreError`` when the shared tier cannot
        record it (an invalidation that did not happen must not look as if it did).
        """
        if not self._started:
            await self.start()
        state = self._state
        floor = state.tag_floor(tag)
        if self._marks is None:
            return state.tag_bumped(tag, None)
        return state.tag_bumped(tag, await self._marks.bump_mark(tag_field(tag), floor))

    async def _refresh_generation(self) -> None:
        """Re-read the shared generation (at start, and in every maintenance pass)."""
        assert self._marks is not None
        state = self._state
        try:
            (generation,) = await self._marks.read_marks([GENERATION_FIELD])
            if generation < state.generation:
                # The shared tier lost it (a restart): carry ours forward for the fleet.
                generation = await self._marks.raise_mark(GENERATION_FIELD, state.generation)
        except StoreError as error:
            state.marks_unreadable("generation", error)
            return
        state.learn_generation(generation)

    async def _confirmed(self, entry: Entry | None) -> Entry | None:
        if entry is None or not entry.tags:
            return entry
        await self._confirm(entry.tags)
        return self._state.current(entry)

    async def _confirm(self, tags: Sequence[str]) -> None:
        """Read from the shared tier the counters of ``tags`` not confirmed lately."""
        state = self._state
        unconfirmed = state.unconfirmed(tags)
        if not unconfirmed or self._marks is None:
            return
        try:
            counters = await self._marks.read_marks([tag_field(tag) for tag in unconfirmed])
        except StoreError as error:
            state.marks_unreadable("tag counters", error)
            return
        state.tags_read(unconfirmed, counters)

    # --- write-through and write-behind -------------------------------------------------

    async def write(
        self,
        key: object,
        value: Any,
        *,
        writer: AsyncWriter | None = None,
        scope: Scope = None,
        ttl: Duration | None = None,
        tags: Iterable[str] = (),
    ) -> Any:
        """Write ``value`` under the namespace's pattern; bad input raises before any write.

        - ``WriteThrough``: ``writer(value)`` writes the source of truth; then the key is
          invalidated (or, with ``on_write="update"``, set), in every process. A failing
          writer leaves the cache untouched and its exception reaches the caller.
        - ``WriteBehind``: the write is appended to the durable journal, then cached;
          returns the journal's ``WriteRecord`` (its idempotency key) once it is durable.
          A ``Flusher`` applies the journal to the source later.
        """
        if not self._started:
            await self.start()
        state = self._state
        pattern = state.write_pattern(writer)
        stored = state.keys.build(key, scope)
        checked = state.tags(tags)
        state.ttl_override(ttl)
        if isinstance(pattern, WriteThrough):
            assert writer is not None
            update = pattern.on_write == "update"
            if update:
                await self._confirm(checked)
                state.make_entry(value, ttl=ttl, tags=checked)  # refuse a bad value first
            try:
                await writer(value)
            except Exception:
                state.writer_failed(stored)
                raise
            # Versions taken from here on are newer than any load already in flight.
            state.note_change(stored)
            if update:
                await self._put(stored, state.make_entry(value, ttl=ttl, tags=checked))
            else:
                await self._remove(stored)
            state.counters.writes += 1
            return None
        await self._confirm(checked)
        entry = state.make_entry(value, ttl=ttl, tags=checked)
        record = await self._runtime.to_thread(self._journal_append, key, scope, value, stored)
        state.note_change(stored)
        try:
            await self._put(stored, entry)
        except StoreError as error:
            # The journal has the write: a cache failure now must not un-acknowledge it.
            state.cache_write_failed(error)
        return record

    def _journal_append(self, key: object, scope: Scope, value: Any, stored: str) -> Any:
        """Append a write-behind write to the journal; returns once it is durable."""
        journal = self._parts.journal
        assert journal is not None
        try:
            record = journal.append(self.name, key, scope, value)
        except Exception:
            self._state.journal_refused(stored)
            raise
        self._state.journaled()
        return record

    def flusher(self, writer: Callable[[Any], object], *, consumer: str) -> Any:
        """A ``Flusher`` applying this namespace's journal through ``writer(record)``, with
        the policy's attempts and backoff (``start()`` it; ``consumer`` names this process)."""
        pattern = self._state.policy.pattern
        journal = self._parts.journal
        if not isinstance(pattern, WriteBehind) or journal is None:
            raise UsageError(f"namespace {self.name!r} is not write-behind: nothing to flush")
        from steadycache.write_behind import Flusher

        return Flusher(
            journal,
            writer,
            consumer=consumer,
            max_attempts=pattern.max_attempts,
            backoff=pattern.backoff,
            max_backoff=pattern.max_backoff,
        )

    # --- read-through -----------------------------------------------------------------

    async def get_or_load(
        self,
        key: object,
        loader: AsyncLoader[T],
        *,
        scope: Scope = None,
        ttl: Duration | None = None,
        tags: Iterable[str] = (),
    ) -> T:
        """The cached value, loading it with ``loader()`` under the namespace's stampede policy.

        Bad input (key, scope, ``ttl``, ``tags``) raises before the store or the loader runs;
        so does a namespace whose policy chose ``CacheAside()`` (``UsageError``): there the
        application loads, and reads with ``get``.
        """
        state = self._state
        if state.refuses_loads:
            state.check_loads("get_or_load()")
        if not self._started:
            await self.start()
        stored = state.keys.build(key, scope)
        checked: tuple[str, ...] = ()
        if ttl is not None or tags:
            state.ttl_override(ttl)
            checked = state.tags(tags)
        local = self._local
        now = state.clock()
        entry = local.get(stored, now) if local is not None else await self._fetch(stored, now)
        if entry is not None and entry.tags:
            entry = await self._confirmed(entry)
        action = state.classify(stored, entry, now)
        if state.watches_reads:
            state.note_read(stored, key, scope, loader, ttl, checked, entry)
            self._runtime.ensure_services()  # maintenance, if made outside an event loop
        if action is SERVE:
            if self._auditor is not None:
                self._offer_audit(key, scope, entry)
            return entry.value  # type: ignore[union-attr, no-any-return]
        if action is not LOAD:
            self._refresh_in_background(stored, loader, ttl, checked, entry.stored_at)  # type: ignore[union-attr]
            return entry.value  # type: ignore[union-attr, no-any-return]
        return await self._load(stored, loader, entry, ttl, checked)

    def _landed_since(self, stored: str, seen: Entry | None) -> Entry | None:
        """A fresh entry stored after ``seen`` was read: another caller's load landed in
        between (its flight already over), so this caller must not load again."""
        local = self._parts.local
        if local is None:
            return None
        current = local.peek(stored)
        seen_stored_at = seen.stored_at if seen is not None else float("-inf")
        return current if self._state.fresher_than(current, seen_stored_at) else None

    async def _load(
        self,
        stored: str,
        loader: AsyncLoader[T],
        stale: Entry | None,
        ttl: Duration | None,
        tags: tuple[str, ...],
    ) -> T:
        state = self._state
        if not state.coalesces:
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
        state.counters.coalesced += 1
        state.counters.lock_waits += 1
        wait = state.single_flight_wait
        if not await flight.wait(wait if math.isfinite(wait) else 1e9):
            state.counters.wait_timeouts += 1
            if state.stale_for_error(stale):
                return stale.value  # type: ignore[union-attr, no-any-return]
            raise LoadTimeoutError(
                f"namespace {state.name!r}, key {stored!r}: waited {wait:g}s for another "
                "caller's load (SingleFlight wait_timeout)"
            )
        if isinstance(flight.error, RefreshSkipped):
            return await self._load(stored, loader, stale, ttl, tags)  # the refresh found a lease
        if flight.error is not None:
            if state.stale_for_error(stale):
                return stale.value  # type: ignore[union-attr, no-any-return]
            cause = flight.error.__cause__ if isinstance(flight.error, LoaderError) else None
            if isinstance(flight.error, LoaderError) and cause is not None:
                # A fresh exception per waiter: one instance raised in many waiters would
                # have its traceback rewritten by each of them.
                raise LoaderError(state.name, stored, cause) from cause
            raise flight.error
        return flight.value  # type: ignore[no-any-return]

    async def _load_once(
        self,
        stored: str,
        loader: AsyncLoader[T],
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
        loader: AsyncLoader[T],
        stale: Entry | None,
        ttl: Duration | None,
        tags: tuple[str, ...],
        flight: AsyncFlight | None = None,
    ) -> T:
        """Fleet-wide single-flight: load only while holding the key's lease in Redis.

        Without the lease, wait for the holder's result (or answer with a stale copy at
        once, when there is one), polling with backoff but never sleeping past the moment
        the holder's lease runs out: a crashed holder's lease expires within ``lease_ttl``
        and the next claim takes over. ``SingleFlight.wait_timeout`` bounds the wait (at
        least two leases: the policy checks). If Redis fails, load without a lease (counted).
        """
        leases = self._leases
        assert leases is not None
        state = self._state
        clock = state.clock
        deadline = time.monotonic() + state.single_flight_wait
        pause = LEASE_POLL_FIRST
        while True:
            try:
                token, holder_left = await leases.claim_lease(stored, self._lease_ttl)
            except StoreError as error:
                state.counters.store_errors += 1
                logger.warning("lease unavailable, loading without it: %s", error)
                return await self._run_loader(stored, loader, stale, ttl, tags)
            if token is not None:
                seen = stale.stored_at if stale is not None else float("-inf")
                current = await self._confirmed(await self._shared_or_none(stored))
                if state.fresher_than(current, seen):
                    # Written by another process between our read and our lease.
                    await self._release_lease(stored, token)
                    return current.value  # type: ignore[union-attr, no-any-return]
                if flight is not None:
                    flight.loading()  # our followers' wait counts from now
                return await self._run_loader(stored, loader, stale, ttl, tags, lease=token)
            state.counters.lease_waits += 1
            if stale is not None and stale.stale_until > clock():
                state.counters.stale_served += 1
                return stale.value  # type: ignore[no-any-return]
            now = time.monotonic()
            if now >= deadline:
                state.counters.wait_timeouts += 1
                if state.stale_for_error(stale):
                    return stale.value  # type: ignore[union-attr, no-any-return]
                raise LoadTimeoutError(
                    f"namespace {state.name!r}, key {stored!r}: another process held the "
                    f"lease and produced no value within {state.single_flight_wait:g}s "
                    "(SingleFlight wait_timeout)"
                )
            await self._runtime.sleep(min(pause, holder_left + LEASE_EXPIRY_SLACK, deadline - now))
            pause = min(pause * 2, LEASE_POLL_MAX)
            try:
                entry = await self._confirmed(await leases.get_shared(stored))
            except StoreError as error:
                state.counters.store_errors += 1
                logger.warning("shared tier unavailable while waiting for a lease: %s", error)
                return await self._run_loader(stored, loader, stale, ttl, tags)
            if entry is not None and entry.fresh_until > clock():
                return entry.value  # type: ignore[no-any-return]

    async def _shared_or_none(self, stored: str) -> Entry | None:
        assert self._leases is not None
        try:
            return await self._leases.get_shared(stored)
        except StoreError as error:
            self._state.counters.store_errors += 1
            logger.warning("shared tier unavailable after winning a lease: %s", error)
            return None

    async def _run_loader(
        self,
        stored: str,
        loader: AsyncLoader[T],
        stale: Entry | None,
        ttl: Duration | None,
        tags: tuple[str, ...],
        lease: str | None = None,
    ) -> T:
        """Call the loader within the origin budget and timeouts, then store its value.

        A lease, when given, is renewed while the loader runs and spent however the load
        ends (written, refused, loader error, encoding error, timeout, cancellation): no
        exit leaves it for the fleet to wait on.
        """
        if lease is None:
            return await self._load_and_store(stored, loader, stale, ttl, tags, None)
        assert self._leases is not None
        held = self._lease_keeper.hold(self._leases, stored, lease, self._lease_ttl)
        try:
            return await self._load_and_store(stored, loader, stale, ttl, tags, held)
        finally:
            if not held.detached:
                await self._spend(held)

    async def _load_and_store(
        self,
        stored: str,
        loader: AsyncLoader[T],
        stale: Entry | None,
        ttl: Duration | None,
        tags: tuple[str, ...],
        held: HeldLease | None,
    ) -> T:
        state = self._state
        limiter = self._limiter
        if limiter is not None:
            try:
                await limiter.acquire()
            except OriginOverloaded:
                state.counters.origin_rejections += 1
                logger.warning(
                    "origin limiter refused a load: namespace=%s key=%s", state.name, stored
                )
                if state.stale_for_error(stale):
                    return stale.value  # type: ignore[union-attr, no-any-return]
                raise
        clock = state.clock
        await self._confirm(tags)
        basis = state.begin_load(tags)
        started = clock()
        failed = True
        try:
            if self._timeouts is None:
                value = await self._runtime.call_loader(loader)
            else:
                value = await self._call_with_timeouts(stored, loader, stale, ttl, basis, held)
            failed = False
        except UsageError:
            raise
        except LoadTimeoutError:
            state.record_load(clock() - started, failed=True)
            if state.stale_for_error(stale):
                return stale.value  # type: ignore[union-attr, no-any-return]
            raise
        except ServedStale as served:
            failed = False
            return served.value  # type: ignore[no-any-return]
        except Exception as exc:
            state.record_load(clock() - started, failed=True)
            logger.warning("loader failed: namespace=%s key=%s error=%r", state.name, stored, exc)
            if state.stale_for_error(stale):
                return stale.value  # type: ignore[union-attr, no-any-return]
            raise LoaderError(state.name, stored, exc) from exc
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
        assert self._leases is not None
        try:
            await self._leases.release_lease(stored, lease)
        except StoreError as error:  # it expires by itself after lease_ttl
            self._state.counters.store_errors += 1
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
        """Store a loaded value (through the lease, if held). A value the codec refuses
        raises ``SerializationError`` with nothing written; the lease is then still held
        and the caller's ``finally`` gives it back."""
        state = self._state
        state.record_load(elapsed, failed=False)
        if not state.landed(stored, basis):
            return  # invalidated or written while loading: this value may predate it
        entry = state.make_entry(value, ttl=ttl, load_cost=elapsed, basis=basis)
        if held is None:
            await self._put(stored, entry)
        else:
            assert self._leases is not None
            held.spend()  # the write takes the lease, whatever it decides
            try:
                outcome = await self._leases.write_leased(stored, entry, held.token)
            except StoreError as error:
                state.counters.store_errors += 1
                logger.warning("leased write failed: namespace=%s error=%s", state.name, error)
                await self._release_lease(stored, held.token)  # it may never have arrived
                return
            if outcome is not WriteOutcome.WRITTEN:
                state.refused_write(outcome)
                return
        state.loaded(stored, entry)

    async def _call_with_timeouts(
        self,
        stored: str,
        loader: AsyncLoader[T],
        stale: Entry | None,
        ttl: Duration | None,
        basis: LoadBasis,
        held: HeldLease | None,
    ) -> T:
        timeouts = self._timeouts
        assert timeouts is not None
        runtime = self._runtime
        pending = runtime.start_call(loader)
        if timeouts.soft is not None and stale is not None:
            try:
                return await runtime.wait_call(pending, timeouts.soft, keep=True)
            except TimeoutError:
                # Answer with stale now; the load finishes in the background and is stored
                # (through the lease, which it now owns and keeps renewing).
                self._state.counters.soft_timeouts += 1
                self._state.counters.stale_served += 1
                if held is not None:
                    held.detached = True
                started = self._state.clock()
                runtime.when_done(
                    pending, self._finish_late_load, stored, pending, ttl, basis, started, held
                )
                raise ServedStale(stale.value) from None
        try:
            return await runtime.wait_call(pending, timeouts.hard, keep=False)
        except TimeoutError:
            self._state.counters.hard_timeouts += 1
            raise LoadTimeoutError(
                f"namespace {self._state.name!r}, key {stored!r}: loader still running after "
                f"the hard timeout of {timeouts.hard:g}s"
            ) from None

    async def _finish_late_load(
        self,
        stored: str,
        pending: Any,
        ttl: Duration | None,
        basis: LoadBasis,
        started: float,
        held: HeldLease | None,
    ) -> None:
        try:
            try:
                value = await self._runtime.result(pending)
            except Exception as exc:
                self._state.record_load(self._state.clock() - started, failed=True)
                logger.warning(
                    "late load failed: namespace=%s key=%s error=%r", self.name, stored, exc
                )
                return
            elapsed = self._state.clock() - started
            await self._store_loaded(stored, value, ttl, basis, elapsed, held)
        except Exception:  # nobody waits for this load any more: log, never raise
            logger.exception("late load not stored: namespace=%s key=%s", self.name, stored)
        finally:
            if held is not None:
                await self._spend(held)

    def _refresh_in_background(
        self,
        stored: str,
        loader: AsyncLoader[Any],
        ttl: Duration | None,
        tags: tuple[str, ...],
        seen_stored_at: float,
    ) -> None:
        """Reload ``stored`` without making the caller wait.

        ``seen_stored_at`` is when the entry that prompted the refresh was written; a shared
        store holding a newer one means another process refreshed first.
        """
        state = self._state
        blocked_until = state.refresh_blocked_until(stored)
        if blocked_until is not None:
            # The origin failed this key's last refresh: back off, serve what we have.
            if state.schedule is not None:
                state.schedule.retry(stored, blocked_until)
            return
        flight, leader = self._flights.join(stored)
        if not leader:
            return  # someone is already loading this key
        local = self._parts.local
        if local is not None and state.fresher_than(local.peek(stored), seen_stored_at):
            # A refresh landed between this caller's read and now: nothing to do.
            state.counters.refreshes_skipped += 1
            self._flights.land(stored, flight)
            flight.fail(RefreshSkipped())
            return
        state.counters.background_refreshes += 1
        self._runtime.spawn(self._refresh, stored, loader, ttl, tags, seen_stored_at, flight)

    async def _refresh(
        self,
        stored: str,
        loader: AsyncLoader[Any],
        ttl: Duration | None,
        tags: tuple[str, ...],
        seen_stored_at: float,
        flight: AsyncFlight,
    ) -> None:
        state = self._state
        try:
            lease = None
            if self._leases is not None:
                try:
                    lease, _ = await self._leases.claim_lease(stored, self._lease_ttl)
                except StoreError as error:
                    logger.warning("refresh without lease (shared tier failed): %s", error)
                else:
                    if lease is None or state.fresher_than(
                        await self._shared_or_none(stored), seen_stored_at
                    ):
                        # Another process is refreshing, or has just refreshed, this key:
                        # one refresh per fleet.
                        if lease is not None:
                            await self._release_lease(stored, lease)
                        state.counters.refreshes_skipped += 1
                        flight.fail(RefreshSkipped())
                        return
            value = await self._run_loader(stored, loader, None, ttl, tags, lease=lease)
            flight.succeed(value)
            state.refresh_succeeded(stored)
        except BaseException as exc:  # counted and logged by _run_loader
            flight.fail(exc)
            retry_at = state.refresh_failed(stored)
            if state.schedule is not None:
                state.schedule.retry(stored, retry_at)
        finally:
            self._flights.land(stored, flight)

    # --- maintenance ------------------------------------------------------------------

    async def maintain(self, now: float) -> None:
        """One maintenance pass: the refreshes, snapshot and generation re-read now due,
        and the shared tier's metrics (the cache's maintenance service calls this)."""
        for work in self._state.due(now):
            if isinstance(work, Refresh):
                self._refresh_in_background(
                    work.stored, work.loader, work.ttl, work.tags, work.seen_stored_at
                )
            elif work is SNAPSHOT:
                await self.snapshot_hot_keys()
            elif work is REREAD_GENERATION and self._marks is not None:
                await self._refresh_generation()
        if self._parts.shared is not None and self._started:
            await self._parts.shared.refresh_stats()

    # --- refresh-ahead and cold start --------------------------------------------------

    def hot_keys(self, n: int | None = None) -> list[tuple[Any, Any, int]]:
        """The hottest keys read through ``get_or_load``: ``(key, scope, estimated reads)``."""
        return self._state.hot_keys(n)

    async def snapshot_hot_keys(self) -> int:
        """Write the hot-key snapshot now (also periodically and at close); keys written."""
        document = self._state.snapshot_document()
        warm_up = self._state.warm_up
        if document is None or warm_up is None:
            return 0
        text, count = document
        if warm_up.snapshot_path is not None:
            write_text_atomically(warm_up.snapshot_path, text)
        elif self._parts.documents is not None:
            try:
                await self._parts.documents.put_document(SNAPSHOT_DOCUMENT, text)
            except StoreError as error:
                logger.warning("hot-key snapshot not written to the shared tier: %s", error)
                return 0
        else:
            return 0
        return count

    async def _read_snapshot(self) -> list[tuple[Any, Any]] | None:
        warm_up = self._state.warm_up
        if warm_up is not None and warm_up.snapshot_path is not None:
            return read_snapshot(warm_up.snapshot_path, self.name)
        if warm_up is not None and self._parts.documents is not None:
            try:
                text = await self._parts.documents.get_document(SNAPSHOT_DOCUMENT)
            except StoreError as error:
                logger.warning("hot-key snapshot unreadable in the shared tier: %s", error)
                text = None
            return decode_snapshot(text, self.name)
        return None

    async def warm(
        self,
        items: Iterable[tuple[object, AsyncLoader[Any]]] | None = None,
        *,
        loader_for: Callable[[object, Any], AsyncLoader[Any]] | None = None,
        concurrency: int | None = None,
        rate: float | None = None,
        deadline: float | None = None,
    ) -> WarmReport:
        """Load keys before traffic arrives, through single-flight and the origin limiter.

        ``items`` are ``(key, loader)`` pairs; without them the keys come from the hot-key
        snapshot and ``loader_for(key, scope)`` makes each loader. At most ``concurrency``
        loads run at once, at most ``rate`` start per second; loading stops at ``deadline``
        seconds. ``cache.readiness`` turns ready at the warm-up's target or deadline.
        Refused (``UsageError``) where the policy chose ``CacheAside()``.
        """
        self._state.check_loads("warm()")
        if not self._started:
            await self.start()
        snapshot = await self._read_snapshot() if items is None else None
        settings, work = self._state.warm_plan(items, loader_for, snapshot)
        return await run_warm_up_async(
            self,
            work,
            runtime=self._runtime,
            concurrency=concurrency or settings.concurrency,
            rate=rate if rate is not None else settings.rate,
            deadline=deadline if deadline is not None else settings.deadline,
            goal=settings.target,
            readiness=self._readiness,
        )

    async def warm_one(self, key: object, scope: Any, loader: AsyncLoader[Any]) -> None:
        """Load one key of a warm-up (read-through, so single-flight and limits apply)."""
        await self.get_or_load(key, loader, scope=scope)
        self._state.counters.warmed += 1

    # --- observability ----------------------------------------------------------------

    def audit_with(self, auditor: Any) -> None:
        """Hand served reads to ``auditor.observe(key, scope, entry)`` (it samples them)."""
        self._auditor = auditor

    def _offer_audit(self, key: object, scope: Scope, entry: Entry | None) -> None:
        self._state.counters.audit_offers += 1
        try:
            self._auditor.observe(key, scope, entry)
        except Exception:  # an auditor must never fail a read
            logger.exception("staleness auditor failed to take a read of %s", self.name)

    def stats(self) -> NamespaceStats:
        """Counters of this namespace and of its store tier(s)."""
        state = self._state
        if self._limiter is not None:
            state.counters.breaker_open = int(self._limiter.breaker.is_open)
        shared = self._parts.shared
        tiers = shared.tier_stats() if shared is not None else (self._store.stats(),)
        extra: dict[str, int] = {}
        if shared is not None:
            extra.update(shared.shared_counters())
        journal = self._parts.journal
        if journal is not None:
            # What the write-behind journal could lose or found lost (README: durability).
            for name in ("appends_at_risk", "lost_entries", "undecodable"):
                extra[name] = int(getattr(journal, name, 0))
        return state.stats(tiers, extra)

    async def aclose(self) -> None:
        """Write the last hot-key snapshot and close the store and the journal."""
        await self.snapshot_hot_keys()
        if self._local is not None:
            self._local.close()
        else:
            assert self._remote is not None
            await self._remote.aclose()
        if self._parts.journal is not None:
            self._parts.journal.close()
