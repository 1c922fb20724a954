"""``Namespace``: where a sync caller reads and writes, under one namespace's policy.

Reads go store -> freshness decision -> (on a miss) single-flight -> fleet lease -> origin
limiter -> loader; background refreshes, refresh-ahead and warm-up reuse the same path.
"""

from __future__ import annotations

import inspect
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from steadycache._core.durations import Duration
from steadycache._core.entry import Entry
from steadycache._core.freshness import LOAD, SERVE
from steadycache._core.marks import GENERATION_FIELD, LoadBasis, tag_field
from steadycache._namespace_base import NamespaceBase
from steadycache._namespace_core import (
    NamespaceCore,
    Scope,
    logger,
)
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
from steadycache.stampede.origin import OriginLimiter
from steadycache.stampede.single_flight import Flight, FlightTable
from steadycache.stampede.warm import WarmReport, run_warm_up
from steadycache.stores.base import Store, WriteOutcome

if TYPE_CHECKING:
    from steadycache.cache import Cache

P = ParamSpec("P")
T = TypeVar("T")

_REFRESH_WORKERS = 4
# Loads run on these threads only when LoaderTimeouts is set (a thread cannot be
# interrupted, so the caller waits on a future instead of running the loader itself).
_TIMED_LOAD_WORKERS = 32


class Namespace(NamespaceBase[Store, Callable[[], Any]]):
    """One namespace: a policy, a key builder, a store and its counters (thread-safe)."""

    def __init__(self, core: NamespaceCore, store: Store, cache: Cache) -> None:
        limit = core.policy.stampede.origin_limit
        limiter = None if limit is None else OriginLimiter(core.name, limit, core.clock)
        super().__init__(core, store, limiter)
        self._cache = cache
        self._flights = FlightTable()
        if self._read_marks is not None:
            self._refresh_generation()

    def start(self) -> None:
        """Read the fleet's current generation (done at creation; see ``Cache.start``)."""
        if self._read_marks is not None:
            self._refresh_generation()

    # --- cache-aside ------------------------------------------------------------------

    def get(self, key: object, default: Any = None, *, scope: Scope = None) -> Any:
        """The cached value, or ``default`` when absent, expired or chosen for early refresh.

        In cache-aside use the caller loads on ``default`` and calls ``set``; early refresh
        then means one caller (chosen at random, XFetch) reloads a little before expiry.
        """
        stored = self._core.keys.build(key, scope)
        now = self._core.clock()
        entry = self._store.get(stored, now)
        if entry is not None and entry.tags:
            entry = self._confirmed(entry)
        if self._core.classify(stored, entry, now, can_refresh=False) is SERVE:
            if self._auditor is not None:
                self._offer_audit(key, scope, entry)
            return entry.value  # type: ignore[union-attr]
        return default

    def get_entry(self, key: object, *, scope: Scope = None) -> Entry | None:
        """The raw entry with its metadata (freshness not applied), or None.

        An entry one of whose tags was invalidated since it was loaded is None: it is
        never served."""
        return self._confirmed(self._store.get(self._core.keys.build(key, scope)))

    def set(
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
        stored = self._core.keys.build(key, scope)
        tags = self._core.tags(tags)
        self._core.ttl_override(ttl)
        self._confirm(tags)
        entry = self._core.make_entry(value, ttl=ttl, tags=tags, load_cost=load_cost)
        self._store.set(stored, entry)
        self._core.counters.sets += 1

    def delete(self, key: object, *, scope: Scope = None) -> bool:
        """Invalidate one key in every process; whether an entry was there.

        A load of the key that started before the delete cannot store its (older) value
        afterwards: in this process by the recent-change guard, across processes by the
        shared tier's lease."""
        stored = self._core.keys.build(key, scope)
        self._core.counters.deletes += 1
        self._core.note_change(stored)
        return self._store.delete(stored)

    def invalidate(self, key: object, *, scope: Scope = None) -> bool:
        """``delete``, counted as an invalidation (``invalidations``): what events,
        database triggers and the invalidation bus do when the source changed."""
        stored = self._core.keys.build(key, scope)
        self._core.counters.invalidations += 1
        self._core.note_change(stored)
        return self._store.delete(stored)

    def get_many(
        self, keys: Sequence[object], default: Any = None, *, scope: Scope = None
    ) -> list[Any]:
        """``get`` for several keys of one scope, in one store round trip."""
        stored = [self._core.keys.build(key, scope) for key in keys]
        entries = [self._confirmed(entry) for entry in self._store.get_many(stored)]
        values: list[Any] = []
        for stored_key, entry in zip(stored, entries, strict=True):
            action = self._core.classify(stored_key, entry, self._core.clock(), can_refresh=False)
            values.append(entry.value if action is SERVE and entry else default)
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
        tags = self._core.tags(tags)
        self._core.ttl_override(ttl)
        self._confirm(tags)
        prepared = {
            self._core.keys.build(key, scope): self._core.make_entry(value, ttl=ttl, tags=tags)
            for key, value in items.items()
        }
        self._store.set_many(prepared)
        self._core.counters.sets += len(prepared)

    def invalidate_all(self) -> int:
        """Invalidate every entry of this namespace in every process; L1 entries dropped here.

        A generation bump: every stored key carries the generation, so old entries become
        unreachable at once without scanning for them (they expire by their TTL). With a
        shared tier the generation lives in Redis and the backplane carries the bump to
        every process; a process that missed it re-reads the generation within a second.
        """
        core = self._core
        if self._bump_mark is None:
            return self._generation_moved(core.bump_generation())
        generation = self._bump_mark(GENERATION_FIELD, core.generation)
        return self._generation_moved(core.learn_generation(generation))

    def invalidate_tag(self, tag: str) -> int:
        """Invalidate every entry tagged ``tag``, in every process; the tag's new counter.

        No key is scanned: the tag's counter moves on, and entries recorded with an older
        counter are refused at read time. Raises ``StoreError`` when the shared tier cannot
        record it (an invalidation that did not happen must not look as if it did).
        """
        floor = self._tag_floor(tag)
        if self._bump_mark is None:
            return self._tag_bumped(tag, None)
        return self._tag_bumped(tag, self._bump_mark(tag_field(tag), floor))

    def _refresh_generation(self) -> None:
        """Re-read the shared generation (start-up, and the maintenance worker's pass)."""
        assert self._read_marks is not None
        core = self._core
        try:
            (generation,) = self._read_marks([GENERATION_FIELD])
            if generation < core.generation:
                # The shared tier lost it (a restart): carry ours forward for the fleet.
                generation = self._raise_mark(GENERATION_FIELD, core.generation)
        except StoreError as error:
            self._marks_unreadable("generation", error)
            return
        core.learn_generation(generation)

    def _marks_due(self) -> None:
        self._refresh_generation()

    def _confirmed(self, entry: Entry | None) -> Entry | None:
        if entry is None or not entry.tags:
            return entry
        self._confirm(entry.tags)
        return self._core.current(entry)

    def _confirm(self, tags: Sequence[str]) -> None:
        """Read from the shared tier the counters of ``tags`` not confirmed lately."""
        unconfirmed = self._unconfirmed(tags)
        if not unconfirmed:
            return
        try:
            counters = self._read_marks([tag_field(tag) for tag in unconfirmed])
        except StoreError as error:
            self._marks_unreadable("tag counters", error)
            return
        self._tags_read(unconfirmed, counters)

    # --- write-through and write-behind -------------------------------------------------

    def write(
        self,
        key: object,
        value: Any,
        *,
        writer: Callable[[Any], object] | None = None,
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
        core = self._core
        pattern = self._write_pattern(writer)
        stored = core.keys.build(key, scope)
        tags = core.tags(tags)
        core.ttl_override(ttl)
        if isinstance(pattern, WriteThrough):
            assert writer is not None
            update = pattern.on_write == "update"
            if update:
                self._confirm(tags)
                core.make_entry(value, ttl=ttl, tags=tags)  # refuse a bad value before writing
            try:
                writer(value)
            except Exception:
                self._writer_failed(stored)
                raise
            # Versions taken from here on are newer than any load already in flight.
            core.note_change(stored)
            if update:
                self._store.set(stored, core.make_entry(value, ttl=ttl, tags=tags))
            else:
                self._store.delete(stored)
            core.counters.writes += 1
            return None
        self._confirm(tags)
        entry = core.make_entry(value, ttl=ttl, tags=tags)
        record = self._journal_append(key, scope, value, stored)
        core.note_change(stored)
        self._cache_written(stored, entry)
        return record

    def _cache_written(self, stored: str, entry: Entry) -> None:
        # The journal has the write: a cache failure now must not un-acknowledge it.
        try:
            self._store.set(stored, entry)
        except StoreError as error:
            self._cache_write_failed(error)

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
        """The cached value, loading it with ``loader()`` under the namespace's stampede policy.

        Bad input (key, scope, ``ttl``, ``tags``) raises before the store or the loader runs.
        """
        core = self._core
        stored = core.keys.build(key, scope)
        checked: tuple[str, ...] = ()
        if ttl is not None or tags:
            core.ttl_override(ttl)
            checked = core.tags(tags)
        now = core.clock()
        entry = self._store.get(stored, now)
        if entry is not None and entry.tags:
            entry = self._confirmed(entry)
        action = core.classify(stored, entry, now)
        if self._watches_reads:
            self._note_read(stored, key, scope, loader, ttl, checked, entry)
        if action is SERVE:
            if self._auditor is not None:
                self._offer_audit(key, scope, entry)
            return entry.value  # type: ignore[union-attr, no-any-return]
        if action is not LOAD:
            self._refresh_in_background(stored, loader, ttl, checked, entry.stored_at)  # type: ignore[union-attr]
            return entry.value  # type: ignore[union-attr, no-any-return]
        return self._load(stored, loader, entry, ttl, checked)

    def _load(
        self,
        stored: str,
        loader: Callable[[], T],
        stale: Entry | None,
        ttl: Duration | None,
        tags: tuple[str, ...],
    ) -> T:
        core = self._core
        if not core.coalesces:
            return self._load_once(stored, loader, stale, ttl, tags, None)
        flight, leader = self._flights.join(stored)
        if leader:
            try:
                landed = self._landed_since(stored, stale)
                value: T
                if landed is not None:
                    value = landed.value  # another caller's load landed just before ours
                else:
                    value = self._load_once(stored, loader, stale, ttl, tags, flight)
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
        if isinstance(flight.error, RefreshSkipped):
            return self._load(stored, loader, stale, ttl, tags)  # the refresh found a lease
        if flight.error is not None:
            if core.stale_for_error(stale):
                return stale.value  # type: ignore[union-attr, no-any-return]
            cause = flight.error.__cause__ if isinstance(flight.error, LoaderError) else None
            if isinstance(flight.error, LoaderError) and cause is not None:
                # A fresh exception per waiter: one instance raised in many threads would
                # have its traceback rewritten by each of them.
                raise LoaderError(core.name, stored, cause) from cause
            raise flight.error
        return flight.value  # type: ignore[no-any-return]

    def _load_once(
        self,
        stored: str,
        loader: Callable[[], T],
        stale: Entry | None,
        ttl: Duration | None,
        tags: tuple[str, ...],
        flight: Flight | None,
    ) -> T:
        if self._leases is None:
            return self._run_loader(stored, loader, stale, ttl, tags)
        return self._load_with_lease(stored, loader, stale, ttl, tags, flight)

    def _load_with_lease(
        self,
        stored: str,
        loader: Callable[[], T],
        stale: Entry | None,
        ttl: Duration | None,
        tags: tuple[str, ...],
        flight: Flight | None = None,
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
        core = self._core
        clock = self._cache._clock
        deadline = time.monotonic() + core.single_flight_wait
        pause = LEASE_POLL_FIRST
        while True:
            try:
                token, holder_left = leases.claim_lease(stored, self._lease_ttl)
            except StoreError as error:
                core.counters.store_errors += 1
                logger.warning("lease unavailable, loading without it: %s", error)
                return self._run_loader(stored, loader, stale, ttl, tags)
            if token is not None:
                seen = stale.stored_at if stale is not None else float("-inf")
                current = self._confirmed(self._shared_or_none(stored))
                if self._fresher_than(current, seen):
                    # Written by another process between our read and our lease.
                    self._release_lease(stored, token)
                    return current.value  # type: ignore[union-attr, no-any-return]
                if flight is not None:
                    flight.loading()  # our followers' wait counts from now
                return self._run_loader(stored, loader, stale, ttl, tags, lease=token)
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
            time.sleep(min(pause, holder_left + LEASE_EXPIRY_SLACK, deadline - now))
            pause = min(pause * 2, LEASE_POLL_MAX)
            try:
                entry = self._confirmed(leases.get_shared(stored))
            except StoreError as error:
                core.counters.store_errors += 1
                logger.warning("shared tier unavailable while waiting for a lease: %s", error)
                return self._run_loader(stored, loader, stale, ttl, tags)
            if entry is not None and entry.fresh_until > clock():
                return entry.value  # type: ignore[no-any-return]

    def _shared_or_none(self, stored: str) -> Entry | None:
        try:
            return self._leases.get_shared(stored)  # type: ignore[no-any-return]
        except StoreError as error:
            self._core.counters.store_errors += 1
            logger.warning("shared tier unavailable after winning a lease: %s", error)
            return None

    def _run_loader(
        self,
        stored: str,
        loader: Callable[[], T],
        stale: Entry | None,
        ttl: Duration | None,
        tags: tuple[str, ...],
        lease: str | None = None,
    ) -> T:
        """Call the loader within the origin budget and timeouts, then store its value.

        A lease, when given, is renewed while the loader runs and spent however the load
        ends (written, refused, loader error, encoding error, timeout): no exit leaves it
        for the fleet to wait on.
        """
        if lease is None:
            return self._load_and_store(stored, loader, stale, ttl, tags, None)
        assert self._leases is not None
        held = self._cache._lease_keeper().hold(self._leases, stored, lease, self._lease_ttl)
        try:
            return self._load_and_store(stored, loader, stale, ttl, tags, held)
        finally:
            if not held.detached:
                self._spend(held)

    def _load_and_store(
        self,
        stored: str,
        loader: Callable[[], T],
        stale: Entry | None,
        ttl: Duration | None,
        tags: tuple[str, ...],
        held: HeldLease | None,
    ) -> T:
        core = self._core
        limiter = self._limiter
        if limiter is not None:
            try:
                limiter.acquire()
            except OriginOverloaded:
                core.counters.origin_rejections += 1
                logger.warning(
                    "origin limiter refused a load: namespace=%s key=%s", core.name, stored
                )
                if core.stale_for_error(stale):
                    return stale.value  # type: ignore[union-attr, no-any-return]
                raise
        clock = self._cache._clock
        self._confirm(tags)
        basis = core.begin_load(tags)
        started = clock()
        failed = True
        try:
            if self._timeouts is None:
                value = loader()
                if inspect.isawaitable(value):
                    _refuse_awaitable(loader, value)
            else:
                value = self._call_with_timeouts(stored, loader, stale, ttl, basis, started, held)
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
        self._store_loaded(stored, value, ttl, basis, clock() - started, held)
        return value

    def _spend(self, held: HeldLease) -> None:
        """Stop renewing ``held`` and give it back, unless a write already took it."""
        if held.spend():
            self._release_lease(held.key, held.token)

    def _release_lease(self, stored: str, lease: str) -> None:
        assert self._leases is not None
        try:
            self._leases.release_lease(stored, lease)
        except StoreError as error:  # it expires by itself after lease_ttl
            self._core.counters.store_errors += 1
            logger.warning("lease release failed (it will expire): %s", error)

    def _store_loaded(
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
        core = self._core
        core.record_load(elapsed, failed=False)
        if not core.landed(stored, basis):
            return  # invalidated or written while loading: this value may predate it
        entry = core.make_entry(value, ttl=ttl, load_cost=elapsed, basis=basis)
        if held is None:
            self._store.set(stored, entry)
        else:
            assert self._leases is not None
            held.spend()  # the write takes the lease, whatever it decides
            try:
                outcome = self._leases.write_leased(stored, entry, held.token)
            except StoreError as error:
                core.counters.store_errors += 1
                logger.warning("leased write failed: namespace=%s error=%s", core.name, error)
                self._release_lease(stored, held.token)  # the write may never have arrived
                return
            if outcome is not WriteOutcome.WRITTEN:
                core.refused_write(outcome)
                return
        core.counters.sets += 1
        if self._schedule is not None:
            self._schedule.loaded(stored, entry.stored_at, entry.fresh_until)

    def _call_with_timeouts(
        self,
        stored: str,
        loader: Callable[[], T],
        stale: Entry | None,
        ttl: Duration | None,
        basis: LoadBasis,
        started: float,
        held: HeldLease | None,
    ) -> T:
        timeouts = self._timeouts
        assert timeouts is not None
        future: Future[T] = self._cache._timed_executor().submit(loader)
        if timeouts.soft is not None and stale is not None:
            try:
                return future.result(timeout=timeouts.soft)
            except FutureTimeout:
                # Answer with stale now; the load finishes in the background and is stored
                # (through the lease, which it now owns and keeps renewing).
                self._core.counters.soft_timeouts += 1
                self._core.counters.stale_served += 1
                if held is not None:
                    held.detached = True
                future.add_done_callback(
                    lambda done: self._finish_late_load(stored, done, ttl, basis, started, held)
                )
                raise ServedStale(stale.value) from None
        try:
            return future.result(timeout=timeouts.hard)
        except FutureTimeout:
            self._core.counters.hard_timeouts += 1
            raise LoadTimeoutError(
                f"namespace {self._core.name!r}, key {stored!r}: loader still running after "
                f"the hard timeout of {timeouts.hard:g}s"
            ) from None

    def _finish_late_load(
        self,
        stored: str,
        done: Future[Any],
        ttl: Duration | None,
        basis: LoadBasis,
        started: float,
        held: HeldLease | None,
    ) -> None:
        try:
            error = done.exception()
            elapsed = self._cache._clock() - started
            if error is not None:
                self._core.record_load(elapsed, failed=True)
                logger.warning(
                    "late load failed: namespace=%s key=%s error=%r", self.name, stored, error
                )
                return
            self._store_loaded(stored, done.result(), ttl, basis, elapsed, held)
        except Exception:  # nobody waits for this load any more: log, never raise
            logger.exception("late load not stored: namespace=%s key=%s", self.name, stored)
        finally:
            if held is not None:
                self._spend(held)

    def _refresh_in_background(
        self,
        stored: str,
        loader: Callable[[], Any],
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

        def refresh() -> None:
            try:
                lease = None
                if self._leases is not None:
                    try:
                        lease = self._leases.acquire_lease(stored, self._lease_ttl)
                    except StoreError as error:
                        logger.warning("refresh without lease (shared tier failed): %s", error)
                    else:
                        if lease is None or self._fresher_than(
                            self._shared_or_none(stored), seen_stored_at
                        ):
                            # Another process is refreshing, or has just refreshed, this
                            # key: one refresh per fleet.
                            if lease is not None:
                                self._release_lease(stored, lease)
                            self._core.counters.refreshes_skipped += 1
                            flight.fail(RefreshSkipped())
                            return
                flight.succeed(self._run_loader(stored, loader, None, ttl, tags, lease=lease))
                self._core.refresh_succeeded(stored)
            except BaseException as exc:  # counted and logged by _run_loader
                flight.fail(exc)
                retry_at = self._core.refresh_failed(stored)
                if self._schedule is not None:
                    self._schedule.retry(stored, retry_at)
            finally:
                self._flights.land(stored, flight)

        self._cache._background(refresh)

    # --- refresh-ahead and cold start --------------------------------------------------

    def snapshot_hot_keys(self) -> int:
        """Write the hot-key snapshot now (also periodically and at close); keys written."""
        document = self._snapshot_document()
        if document is None:
            return 0
        text, count = document
        if self._snapshot_file is not None:
            write_text_atomically(self._snapshot_file, text)
        elif self._snapshot_shared:
            try:
                self._store.put_document(SNAPSHOT_DOCUMENT, text)  # type: ignore[attr-defined]
            except StoreError as error:
                logger.warning("hot-key snapshot not written to the shared tier: %s", error)
                return 0
        else:
            return 0
        return count

    def _snapshot_due(self) -> None:
        self.snapshot_hot_keys()

    def _read_snapshot(self) -> list[tuple[Any, Any]] | None:
        if self._snapshot_file is not None:
            return read_snapshot(self._snapshot_file, self.name)
        if self._snapshot_shared:
            try:
                text = self._store.get_document(SNAPSHOT_DOCUMENT)  # type: ignore[attr-defined]
            except StoreError as error:
                logger.warning("hot-key snapshot unreadable in the shared tier: %s", error)
                text = None
            return decode_snapshot(text, self.name)
        return None

    def warm(
        self,
        items: Iterable[tuple[object, Callable[[], Any]]] | None = None,
        *,
        loader_for: Callable[[object, Any], Callable[[], Any]] | None = None,
        concurrency: int | None = None,
        rate: float | None = None,
        deadline: float | None = None,
    ) -> WarmReport:
        """Load keys before traffic arrives, through single-flight and the origin limiter.

        ``items`` are ``(key, loader)`` pairs; without them the keys come from the hot-key
        snapshot and ``loader_for(key, scope)`` makes each loader. At most ``concurrency``
        loads run at once, at most ``rate`` start per second; loading stops at ``deadline``
        seconds. ``cache.readiness`` turns ready at the warm-up's target or deadline.
        """
        snapshot = self._read_snapshot() if items is None else None
        settings, work = self._warm_plan(items, loader_for, snapshot)
        return run_warm_up(
            self,
            work,
            concurrency=concurrency or settings.concurrency,
            rate=rate if rate is not None else settings.rate,
            deadline=deadline if deadline is not None else settings.deadline,
            target=settings.target,
            readiness=self._cache.readiness,
        )

    # --- observability ----------------------------------------------------------------


def _refuse_awaitable(loader: Callable[[], Any], value: Any) -> None:
    close = getattr(value, "close", None)
    if close is not None:
        close()  # a coroutine never awaited would warn
    raise UsageError(
        f"Namespace.get_or_load needs a sync loader; {loader!r} returned "
        f"{type(value).__name__}. Use AsyncCache / AsyncNamespace for async loaders"
    )
