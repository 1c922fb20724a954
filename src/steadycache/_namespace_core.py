"""What the sync and async namespaces share: keys, entries, decisions and counters.

Everything here is free of waiting: the sync ``Namespace`` and the async
``AsyncNamespace`` add only how they wait (threads or the event loop) and how they run a
background refresh. Neither duplicates a decision.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

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
from steadycache._core.keys import KeyBuilder, check_tags
from steadycache._core.marks import GENERATION_FIELD, TAG_FIELD_PREFIX, LoadBasis, Marks
from steadycache.codecs import Codec, codec_for
from steadycache.errors import ConfigurationError, ValueTooLargeError
from steadycache.observability.stats import (
    NamespaceCounters,
    NamespaceStats,
    RollingRatio,
    snapshot,
)
from steadycache.policy import Policy, Sensitivity, SharedTiers
from steadycache.stores.base import StoreStats, WriteOutcome

if TYPE_CHECKING:
    from steadycache.stores.base import AsyncStore, Store
    from steadycache.stores.redis_async import AsyncRedisBackend
    from steadycache.stores.redis_backend import RedisBackend

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
# How far an injected clock may be from wall time when entries go to a shared server.
_MAX_CLOCK_SKEW: Final = 300.0


class TraceSink(Protocol):
    """Receives one record per read (``steadycache.sizing.capture.TraceRecorder``)."""

    def record(self, namespace: str, key: str, value_size: int, hit: bool) -> None: ...


class NamespaceCore:
    """Shared state and pure steps of one namespace."""

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


def store_for(policy: Policy, clock: Clock) -> Store:
    """The namespace's own in-process store, shaped by its eviction decision."""
    from steadycache.stores.memory import MemoryStore

    eviction = policy.eviction
    return MemoryStore(
        max_entries=eviction.max_entries,
        max_bytes=eviction.max_bytes,
        policy=eviction.policy,
        clock=clock,
    )


def journal_for(name: str, policy: Policy, redis: RedisBackend | None) -> Any:
    """The write-behind journal of a ``WriteBehind`` namespace (durability checked here)."""
    from steadycache.policy import WriteBehind
    from steadycache.write_behind import RedisStreamJournal, SqliteJournal

    pattern = policy.pattern
    assert isinstance(pattern, WriteBehind)
    if pattern.journal == "sqlite":
        assert pattern.sqlite_path is not None
        return SqliteJournal(pattern.sqlite_path)
    if redis is None:
        raise ConfigurationError(
            "pattern",
            f"namespace {name!r} journals writes in Redis but this cache has no Redis: "
            "Cache(redis=RedisBackend('redis://...')), or WriteBehind(journal='sqlite', ...)",
        )
    consistency = policy.consistency
    # One hash tag for the stream and its companions: one cluster slot for the scripts.
    stream = pattern.stream or f"{redis.key_prefix}:wb:{{{name}}}"
    return RedisStreamJournal(
        redis.client,
        stream,
        accept_loss=pattern.accept_loss,
        wait_replicas=consistency.wait_replicas if isinstance(consistency, SharedTiers) else 0,
    )


def check_wall_clock(name: str, clock: Clock) -> None:
    """A shared tier expires entries by the server's wall clock (``PXAT stale_until``) and
    orders versions by time across processes: the cache's clock must be wall time."""
    skew = abs(clock() - time.time())
    if skew > _MAX_CLOCK_SKEW:
        raise ConfigurationError(
            "consistency",
            f"namespace {name!r} uses SharedTiers but the cache's clock is {skew:.0f}s away from "
            "wall time; Redis would expire entries at the wrong moment. Use a wall clock "
            "(time.time) for caches with shared tiers",
        )


def shared_store_for(name: str, policy: Policy, backend: RedisBackend, clock: Clock) -> Store:
    """The namespace's two tiers: its own L1 and the shared Redis L2, with the backplane."""
    check_wall_clock(name, clock)
    from steadycache.policy import SharedTiers
    from steadycache.stores.redis import RedisStore
    from steadycache.stores.tiered import TieredStore

    consistency = policy.consistency
    assert isinstance(consistency, SharedTiers)
    shared = RedisStore(
        backend,
        codec_for(policy.security.codec),
        namespace=name,
        wait_replicas=consistency.wait_replicas,
        wait_timeout=consistency.wait_timeout,
    )
    local = store_for(policy, clock)
    return TieredStore(
        name,
        local,  # type: ignore[arg-type]
        shared,
        backend.backplane(),
        l1_max_age=consistency.l1_max_age,
        raise_store_errors=consistency.on_store_error == "raise",
        clock=clock,
    )


def async_shared_store_for(
    name: str, policy: Policy, backend: AsyncRedisBackend, clock: Clock
) -> AsyncStore:
    """The asyncio two tiers: the namespace's L1 and the shared L2 (see ``shared_store_for``)."""
    check_wall_clock(name, clock)
    from steadycache.policy import SharedTiers
    from steadycache.stores.redis_async import AsyncRedisStore
    from steadycache.stores.tiered_async import AsyncTieredStore

    consistency = policy.consistency
    assert isinstance(consistency, SharedTiers)
    shared = AsyncRedisStore(
        backend,
        codec_for(policy.security.codec),
        namespace=name,
        wait_replicas=consistency.wait_replicas,
        wait_timeout=consistency.wait_timeout,
    )
    return AsyncTieredStore(
        name,
        store_for(policy, clock),  # type: ignore[arg-type]
        shared,
        backend,
        l1_max_age=consistency.l1_max_age,
        accept_noeviction=policy.eviction.accept_redis_noeviction,
        raise_store_errors=consistency.on_store_error == "raise",
        clock=clock,
    )
