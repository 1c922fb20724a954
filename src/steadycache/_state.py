"""A namespace's state and decisions: everything of a read or a write that does no I/O.

Keys, entries, freshness decisions, counters, invalidation marks, the refresh-ahead
schedule, hot keys, write-pattern checks and the maintenance work that is due. The I/O
around it is the namespace itself (``_async/namespace.py``, and the sync one generated from
it); nothing here waits, so both flavours share every decision.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

from steadycache._core.durations import Duration, to_seconds
from steadycache._core.entry import Entry
from steadycache._core.freshness import (
    LOAD,
    SERVE,
    SERVE_AND_REFRESH,
    SERVE_STALE_AND_REFRESH,
    XFETCH_HORIZON,
    Action,
    RandomSource,
    can_serve_stale_on_error,
    decide,
    lifetimes,
)
from steadycache._core.keys import KeyBuilder, check_tag, check_tags
from steadycache._core.marks import GENERATION_FIELD, TAG_FIELD_PREFIX, LoadBasis, Marks
from steadycache._signals import ttl_seconds
from steadycache.codecs import Codec, codec_for
from steadycache.errors import ConfigurationError, UsageError, ValueTooLargeError
from steadycache.observability.stats import (
    NamespaceCounters,
    NamespaceStats,
    RollingRatio,
    snapshot,
)
from steadycache.policy import (
    CacheAside,
    HotKeyWarmUp,
    Policy,
    Sensitivity,
    SharedTiers,
    WriteBehind,
    WriteThrough,
)
from steadycache.stampede.hot_keys import HotKeyTracker, encode_snapshot
from steadycache.stampede.refresh_ahead import RefreshSchedule
from steadycache.stores.base import StoreStats, WriteOutcome

logger = logging.getLogger("steadycache")

Clock = Callable[[], float]
Scope = Mapping[str, object] | None

# Per-entry bookkeeping beyond the encoded value (envelope header, dict slot, key): what a
# byte-bounded store charges on top of the payload so tiny values are not "free".
ENTRY_OVERHEAD_BYTES: Final = 64


# A background refresh that failed is retried after 0.25 s, 0.5 s, 1 s, ... up to 30 s, so a
# failing origin sees a trickle of probes, not one call per stale read or worker tick.
_REFRESH_BACKOFF_BASE: Final = 0.25
_REFRESH_BACKOFF_CAP: Final = 30.0
_REFRESH_BACKOFF_KEYS: Final = 10_000
#: How often a namespace with a shared tier re-reads its generation (maintenance).
MARKS_REFRESH_INTERVAL: Final = 1.0
LoaderT = TypeVar("LoaderT", bound=Callable[[], Any])


class TraceSink(Protocol):
    """Receives one record per read (``steadycache.sizing.capture.TraceRecorder``)."""

    def record(self, namespace: str, key: str, value_size: int, hit: bool) -> None: ...


class NamespaceState:
    """One namespace's state, and every step of its reads and writes that does not wait."""

    def __init__(
        self,
        name: str,
        policy: Policy,
        *,
        clock: Clock,
        random: RandomSource,
        key_secret: bytes,
        trace: TraceSink | None,
    ) -> None:
        self.name = name
        self.policy = policy
        security = policy.security
        self.keys = KeyBuilder(
            name,
            dimensions=security.scope.dimensions,
            hash_keys=security.hash_keys,
            max_length=security.max_key_length,
            secret=key_secret,
        )
        self.generation = 0
        consistency = policy.consistency
        #: Tag counters and recent key changes (see ``_core/marks.py``).
        self.marks = Marks(
            max_age=consistency.l1_max_age if isinstance(consistency, SharedTiers) else math.inf
        )
        self.codec: Codec = codec_for(security.codec)
        self.counters = NamespaceCounters()
        self.rolling = RollingRatio(policy.observability.rolling_window)
        self._clock = clock
        #: The namespace's clock, read once per request by the facades.
        self.clock = clock
        self._random = random
        self._trace = trace
        self._ttl = policy.invalidation.ttl
        self._stampede = policy.stampede
        self._max_value_bytes = policy.sizing.max_value_bytes
        self._last_version = 0
        # stored key -> (no background refresh before, consecutive failures)
        self._refresh_backoff: dict[str, tuple[float, int]] = {}
        early = policy.stampede.early_refresh
        # Beyond this many load-costs before expiry, XFetch cannot fire (see freshness.py).
        self._early_horizon = early.beta * XFETCH_HORIZON if early is not None else 0.0
        sensitivity = policy.sensitivity
        #: TRANSACTIONAL data's acknowledged staleness: no lifetime may exceed it.
        self._staleness_bound = (
            sensitivity.max_staleness if sensitivity.level is Sensitivity.TRANSACTIONAL else None
        )
        refresh_ahead = policy.stampede.refresh_ahead
        #: Hot keys and their refresh times (refresh-ahead), or None.
        self.schedule = (
            RefreshSchedule(
                refresh_ahead,
                policy.invalidation.ttl.seconds,
                policy.eviction.max_entries or 100_000,
            )
            if refresh_ahead is not None
            else None
        )
        warm_up = policy.warm_up
        self.warm_up = warm_up if isinstance(warm_up, HotKeyWarmUp) else None
        self.tracker = HotKeyTracker(self.warm_up.top_k) if self.warm_up is not None else None
        #: Whether read-through reads must be noted (one test on the read path).
        self.watches_reads = self.tracker is not None or self.schedule is not None
        self._next_snapshot = (
            clock() + self.warm_up.snapshot_interval if self.warm_up is not None else math.inf
        )
        #: Whether the invalidation marks live in a shared tier (then they are re-read).
        self.shared_marks = False
        #: CacheAside() chosen on purpose: the application loads and set()s its values, so
        #: the cache has no loader to call (left at its default, both styles work).
        self.refuses_loads = isinstance(policy.pattern, CacheAside) and policy.is_explicit(
            "pattern"
        )
        self._next_marks_refresh = clock() + MARKS_REFRESH_INTERVAL

    # --- call arguments -------------------------------------------------------------------

    def ttl_override(self, ttl: Duration | None) -> float | None:
        """A per-call ``ttl`` in seconds, checked like the policy's own: before any I/O.

        A TRANSACTIONAL namespace refuses one that, with stale serving, outlives the
        staleness its owner acknowledged.
        """
        if ttl is None:
            return None
        seconds = to_seconds(ttl, decision="invalidation", what="ttl")
        bound = self._staleness_bound
        if bound is not None:
            worst = seconds + self._stampede.stale_seconds
            if worst > bound:
                raise ConfigurationError(
                    "sensitivity",
                    f"namespace {self.name!r} is TRANSACTIONAL, acknowledged for at most "
                    f"{bound:g}s of staleness, but ttl={seconds:g}s plus stale serving "
                    f"({self._stampede.stale_seconds:g}s) allows {worst:g}s",
                )
        return seconds

    @staticmethod
    def tags(tags: Iterable[str]) -> tuple[str, ...]:
        """The tags of a call, checked (``InvalidKeyError``) before any I/O."""
        return check_tags(tags) if tags else ()

    # --- keys ---------------------------------------------------------------------------

    def bump_generation(self) -> str:
        """Start a new generation (all old keys unreachable); returns the old prefix."""
        return self.learn_generation(self.generation + 1)

    def learn_generation(self, generation: int) -> str:
        """Move to ``generation`` if it is newer (a shared bump); returns the old prefix."""
        old_prefix = self.keys.prefix
        if generation > self.generation:
            self.generation = generation
            self.keys = self.keys.with_generation(generation)
            self.counters.invalidations += 1
        return old_prefix

    def learn_mark(self, field: str, value: int) -> None:
        """Apply a counter another process moved (heard on the backplane)."""
        if field == GENERATION_FIELD:
            self.learn_generation(value)
        elif field.startswith(TAG_FIELD_PREFIX):
            self.marks.learn({field[len(TAG_FIELD_PREFIX) :]: value}, self._clock())

    def note_change(self, stored_key: str) -> None:
        """``stored_key`` was deleted or written: loads that started earlier must not land."""
        now = self._clock()
        self.marks.changed(stored_key, self._next_version(now), now)

    def begin_load(self, tags: tuple[str, ...]) -> LoadBasis:
        """What a load starts from; call before the loader runs (tags confirmed first)."""
        return LoadBasis(self._next_version(self._clock()), tags, self.marks.counters(tags))

    def refused_write(self, outcome: WriteOutcome) -> None:
        """Count a leased write the shared tier refused (and why)."""
        if outcome is WriteOutcome.LEASE_LOST:
            # Invalidated while loading: this value may predate the change. Not cached.
            self.counters.stale_sets_rejected += 1
        else:
            # Another process stored a newer (verified) version meanwhile: it stays.
            self.counters.older_writes_rejected += 1

    def landed(self, stored_key: str, basis: LoadBasis) -> bool:
        """Whether a load from ``basis`` may be stored: no change of the key since it began."""
        if self.marks.changed_after(stored_key, basis.version):
            self.counters.stale_sets_rejected += 1
            return False
        return True

    # --- entries ------------------------------------------------------------------------

    def make_entry(
        self,
        value: Any,
        *,
        ttl: Duration | None = None,
        tags: Iterable[str] = (),
        load_cost: float = 0.0,
        basis: LoadBasis | None = None,
    ) -> Entry:
        """Validate, encode and wrap ``value``; raises before anything is written.

        The stored value is the codec's round trip of ``value``, so an in-process hit
        returns what a shared tier would (JSON turns tuples into lists), and a caller
        mutating its object afterwards does not change the cached copy.
        """
        override = self.ttl_override(ttl)
        payload = self.codec.encode(value)
        if len(payload) > self._max_value_bytes:
            raise ValueTooLargeError(self.name, len(payload), self._max_value_bytes)
        now = self._clock()
        fresh_until, stale_until = lifetimes(now, self._ttl, self._stampede, self._random, override)
        if basis is None:
            tags = self.tags(tags)
            basis = LoadBasis(self._next_version(now), tags, self.marks.counters(tags))
        return Entry(
            self.codec.decode(payload),
            stored_at=now,
            fresh_until=fresh_until,
            stale_until=stale_until,
            load_cost=load_cost,
            version=basis.version,
            tags=basis.tags,
            tag_versions=basis.tag_versions,
            size=len(payload) + ENTRY_OVERHEAD_BYTES,
        )

    def _next_version(self, now: float) -> int:
        # Microseconds of wall time, forced strictly increasing within this process.
        version = max(int(now * 1_000_000), self._last_version + 1)
        self._last_version = version
        return version

    def current(self, entry: Entry | None) -> Entry | None:
        """``entry`` unless one of its tags was invalidated since its value was read.

        Only the counters this process knows; callers with a shared tier confirm
        ``marks.unconfirmed(...)`` first."""
        if entry is None or not entry.tags or self.marks.current(entry):
            return entry
        self.counters.tag_stale_dropped += 1
        return None

    # --- decisions ----------------------------------------------------------------------

    def classify(
        self, stored_key: str, entry: Entry | None, now: float, *, can_refresh: bool = True
    ) -> Action:
        """Decide what a read of ``entry`` does, and count and trace it.

        Without a loader (``can_refresh=False``, cache-aside ``get``) a refresh action
        becomes ``LOAD``: the caller gets a miss and reloads, which is how XFetch works
        in cache-aside code. ``now`` is the reading the store was asked with.
        """
        counters = self.counters
        if (
            entry is not None
            and now < entry.fresh_until - entry.load_cost * self._early_horizon
            and now < self.rolling.next_sample_at
            and self._trace is None
        ):
            # Fast path, the common case: fresh and too far from expiry for early refresh.
            counters.hits += 1
            return SERVE
        action = decide(entry, now, self._stampede, self._random)
        if now >= self.rolling.next_sample_at:
            # Sampled before counting, so the window's baseline excludes this read.
            self.rolling.sample(now, counters.hits + counters.stale_served, counters.misses)
        if action is SERVE_AND_REFRESH:
            counters.early_refreshes += 1
        if action is not SERVE and not can_refresh:
            action = LOAD
        if action is SERVE or action is SERVE_AND_REFRESH:
            counters.hits += 1
        elif action is SERVE_STALE_AND_REFRESH:
            counters.stale_served += 1
        else:
            counters.misses += 1
        if self._trace is not None:
            size = entry.size if entry is not None else 0
            self._trace.record(self.name, stored_key, size, action is not LOAD)
        return action

    def stale_for_error(self, entry: Entry | None) -> bool:
        """Whether a failed load may be answered with ``entry``; counts when it may."""
        if can_serve_stale_on_error(entry, self._clock(), self._stampede):
            self.counters.stale_served_on_error += 1
            return True
        return False

    def record_load(self, seconds: float, *, failed: bool) -> None:
        """Count one loader call and its duration."""
        self.counters.loads += 1
        self.counters.load_seconds += seconds
        if failed:
            self.counters.load_errors += 1

    def stats(
        self, tiers: tuple[StoreStats, ...], extra: dict[str, int] | None = None
    ) -> NamespaceStats:
        """A snapshot of this namespace's counters, its tiers' and its shared parts'."""
        return snapshot(self.name, self.counters, tiers, self.rolling, self._clock(), extra)

    # --- background refresh backoff --------------------------------------------------------

    def refresh_blocked_until(self, stored_key: str) -> float | None:
        """When a background refresh of the key may start again, or None if it may now."""
        backoff = self._refresh_backoff.get(stored_key)
        if backoff is None or self._clock() >= backoff[0]:
            return None
        self.counters.refresh_backoffs += 1
        return backoff[0]

    def refresh_failed(self, stored_key: str) -> float:
        """Back off the key's background refreshes exponentially; when to try next."""
        _, failures = self._refresh_backoff.get(stored_key, (0.0, 0))
        delay = min(_REFRESH_BACKOFF_BASE * float(2**failures), _REFRESH_BACKOFF_CAP)
        retry_at: float = self._clock() + delay
        if len(self._refresh_backoff) >= _REFRESH_BACKOFF_KEYS:
            self._refresh_backoff.clear()  # bounded: forgetting a backoff only costs a retry
        self._refresh_backoff[stored_key] = (retry_at, failures + 1)
        return retry_at

    def refresh_succeeded(self, stored_key: str) -> None:
        """The key's origin answers again: no more backoff."""
        self._refresh_backoff.pop(stored_key, None)

    @property
    def single_flight_wait(self) -> float:
        """Seconds a waiter waits for another caller's load of the same key."""
        flight = self._stampede.single_flight
        return flight.wait_timeout if flight is not None else math.inf

    @property
    def coalesces(self) -> bool:
        """Whether concurrent loads of one key share one loader call."""
        return self._stampede.single_flight is not None

    # --- invalidation marks: the bookkeeping around the shared tier's reads --------------

    def unconfirmed(self, tags: Sequence[str]) -> list[str]:
        """The tags whose counters must be read from the shared tier before they are used."""
        if not self.shared_marks or not tags:
            return []
        return self.marks.unconfirmed(tags, self.clock())

    def tags_read(self, tags: list[str], counters: list[int]) -> None:
        """Counters just read from the shared tier."""
        self.marks.learn(dict(zip(tags, counters, strict=True)), self.clock())

    def marks_unreadable(self, what: str, error: Exception) -> None:
        """Served on what this process knows: counted and logged, as every fallback is."""
        self.counters.store_errors += 1
        logger.warning("namespace %s: %s not read: %s", self.name, what, error)

    def tag_floor(self, tag: str) -> int:
        """Validate ``tag``; its counter as known here (the shared bump's floor)."""
        check_tag(tag)
        return self.marks.counters((tag,))[0]

    def tag_bumped(self, tag: str, counter: int | None) -> int:
        """Record a tag invalidation: ``counter`` from the shared tier, or None (in-process)."""
        if counter is None:
            counter = self.marks.bump(tag, self.clock())
        else:
            self.marks.learn({tag: counter}, self.clock())
        self.counters.tag_invalidations += 1
        return counter

    # --- patterns: the decisions made before any I/O ---------------------------------------

    def check_loads(self, what: str) -> None:
        """``UsageError`` when the cache may not call loaders here (``refuses_loads``)."""
        if self.refuses_loads:
            raise UsageError(
                f"namespace {self.name!r} is cache-aside (pattern=CacheAside() was chosen): "
                f"the application loads and set()s its values, so {what} has no place "
                "here. Choose pattern=ReadThrough() for the cache to call loaders"
            )

    def write_pattern(self, writer: object) -> WriteThrough | WriteBehind:
        """The namespace's write pattern, or ``UsageError`` when ``write()`` cannot run."""
        pattern = self.policy.pattern
        if isinstance(pattern, WriteThrough):
            if writer is None:
                raise UsageError(
                    f"namespace {self.name!r} is write-through: write() needs writer=, the "
                    "callable that writes the source of truth"
                )
            return pattern
        if isinstance(pattern, WriteBehind):
            if writer is not None:
                raise UsageError(
                    f"namespace {self.name!r} is write-behind: its writer is the Flusher's, "
                    "not write()'s"
                )
            return pattern
        raise UsageError(
            f"namespace {self.name!r} uses the {pattern.name} pattern: write() needs "
            "pattern=WriteThrough() or WriteBehind(...); use set()/delete() for cache-aside"
        )

    def writer_failed(self, stored: str) -> None:
        self.counters.write_errors += 1
        logger.warning(
            "writer failed, cache left as it was: namespace=%s key=%s", self.name, stored
        )

    def journal_refused(self, stored: str) -> None:
        self.counters.write_errors += 1
        logger.warning(
            "write-behind journal refused a write (not acknowledged): namespace=%s key=%s",
            self.name,
            stored,
        )

    def journaled(self) -> None:
        self.counters.journaled += 1
        self.counters.writes += 1

    def cache_write_failed(self, error: Exception) -> None:
        self.counters.store_errors += 1
        logger.warning(
            "write-behind: journaled but not cached (reads may see the source's older value "
            "until it is flushed): namespace=%s error=%s",
            self.name,
            error,
        )

    # --- reads noted for refresh-ahead and hot keys ----------------------------------------

    def note_read(
        self,
        stored: str,
        key: object,
        scope: Scope,
        loader: Callable[[], Any],
        ttl: Duration | None,
        tags: tuple[str, ...],
        entry: Entry | None,
    ) -> None:
        """Feed a read-through read to hot-key tracking and refresh-ahead."""
        if self.tracker is not None:
            self.tracker.touch(stored, key, scope)
        if self.schedule is not None:
            self.schedule.read(
                stored,
                loader,
                ttl_seconds(ttl),
                tags,
                self.clock(),
                None if entry is None else (entry.stored_at, entry.fresh_until),
            )

    def loaded(self, stored: str, entry: Entry) -> None:
        """A load stored ``entry``: count it, and schedule its next refresh."""
        self.counters.sets += 1
        if self.schedule is not None:
            self.schedule.loaded(stored, entry.stored_at, entry.fresh_until)

    def fresher_than(self, current: Entry | None, seen_stored_at: float) -> bool:
        """Whether ``current`` is a fresh value written after the one this process decided
        on: then another caller has just loaded it, and loading again would double the
        origin's work."""
        return (
            current is not None
            and current.stored_at > seen_stored_at
            and current.fresh_until > self.clock()
            and (not current.tags or self.marks.current(current))
        )

    # --- maintenance as data ---------------------------------------------------------------

    def due(self, now: float) -> list[Due]:
        """What a maintenance pass at ``now`` must do, in order (the facade does it)."""
        work: list[Due] = []
        if self.schedule is not None:
            for stored, tracked in self.schedule.due(now):
                self.counters.refresh_ahead += 1
                work.append(
                    Refresh(stored, tracked.loader, tracked.ttl, tracked.tags, tracked.stored_at)
                )
        if self.warm_up is not None and now >= self._next_snapshot:
            self._next_snapshot = now + self.warm_up.snapshot_interval
            work.append(SNAPSHOT)
        if self.shared_marks and now >= self._next_marks_refresh:
            # A generation bump whose backplane message was lost is learnt here.
            self._next_marks_refresh = now + MARKS_REFRESH_INTERVAL
            work.append(REREAD_GENERATION)
        return work

    # --- hot keys and warm-up ---------------------------------------------------------------

    def hot_keys(self, n: int | None = None) -> list[tuple[Any, Any, int]]:
        """The hottest keys read through ``get_or_load``: ``(key, scope, estimated reads)``."""
        if self.tracker is None:
            raise UsageError(
                f"namespace {self.name!r} tracks no hot keys: set warm_up=HotKeyWarmUp(...)"
            )
        return self.tracker.top(n)

    def snapshot_document(self) -> tuple[str, int] | None:
        """The hot keys as a snapshot document and how many, or None when not tracked."""
        if self.tracker is None:
            return None
        hot = self.tracker.top()
        return encode_snapshot(self.name, hot), len(hot)

    def warm_plan(
        self,
        items: Iterable[tuple[object, LoaderT]] | None,
        loader_for: Callable[[object, Any], LoaderT] | None,
        snapshot: list[tuple[Any, Any]] | None,
    ) -> tuple[HotKeyWarmUp, list[tuple[object, Any, LoaderT]]]:
        """The warm-up settings and ``(key, scope, loader)`` work: given, or the snapshot's."""
        settings = self.warm_up or HotKeyWarmUp()
        if items is not None:
            return settings, [(key, None, loader) for key, loader in items]
        if loader_for is None or snapshot is None:
            raise UsageError(
                "warm() needs items, or loader_for and a hot-key snapshot "
                "(HotKeyWarmUp with a snapshot_path, or with SharedTiers)"
            )
        return settings, [(key, scope, loader_for(key, scope)) for key, scope in snapshot]


# --- maintenance work ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refresh:
    """Reload a hot key in the background (refresh-ahead)."""

    stored: str
    loader: Callable[[], Any]
    ttl: float | None
    tags: tuple[str, ...]
    seen_stored_at: float


class _Chore(enum.Enum):
    SNAPSHOT = "snapshot"
    REREAD_GENERATION = "reread generation"


#: Write the periodic hot-key snapshot.
SNAPSHOT: Final = _Chore.SNAPSHOT
#: Re-read the shared generation (a bump whose backplane message was lost).
REREAD_GENERATION: Final = _Chore.REREAD_GENERATION
Due = Refresh | _Chore
