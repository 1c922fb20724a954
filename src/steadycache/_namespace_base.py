"""What ``Namespace`` and ``AsyncNamespace`` share beyond the pure core: their stampede
machinery (limiter, leases, refresh-ahead schedule, hot-key tracking), maintenance, hot-key
snapshots, warm-up planning and stats. Subclasses add only how they wait and load.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, Generic, Protocol, TypeVar, cast

from steadycache._core.durations import Duration
from steadycache._core.entry import Entry
from steadycache._core.keys import check_tag
from steadycache._namespace_core import NamespaceCore, Scope, logger
from steadycache._signals import ttl_seconds
from steadycache.errors import StoreError, UsageError
from steadycache.observability.stats import NamespaceStats
from steadycache.policy import HotKeyWarmUp, Policy, SharedTiers, WriteBehind, WriteThrough
from steadycache.stampede.hot_keys import HotKeyTracker, encode_snapshot
from steadycache.stampede.refresh_ahead import RefreshSchedule

StoreT = TypeVar("StoreT")


class ReadAuditor(Protocol):
    """Takes served reads and samples them (``steadycache.invalidation.StalenessAuditor``)."""

    def observe(self, key: object, scope: Scope, entry: Entry | None) -> object: ...


#: How often a namespace with a shared tier re-reads its generation (maintenance worker).
MARKS_REFRESH_INTERVAL: Final = 1.0
LoaderT = TypeVar("LoaderT", bound=Callable[[], Any])


class NamespaceBase(ABC, Generic[StoreT, LoaderT]):
    """One namespace's state and the steps that do not wait. Not used directly."""

    def __init__(self, core: NamespaceCore, store: StoreT, limiter: Any) -> None:
        self._core = core
        self._store = store
        #: The origin limiter (threads or asyncio flavour), or None.
        self._limiter = limiter
        policy = core.policy
        stampede = policy.stampede
        self._timeouts = stampede.timeouts
        consistency = policy.consistency
        # Fleet-wide single-flight: only when the store is shared and can hold leases.
        self._leases: Any = (
            store
            if isinstance(consistency, SharedTiers)
            and consistency.leases
            and hasattr(store, "acquire_lease")
            else None
        )
        self._lease_ttl = consistency.lease_ttl if isinstance(consistency, SharedTiers) else 0.0
        self._schedule = (
            RefreshSchedule(
                stampede.refresh_ahead,
                policy.invalidation.ttl.seconds,
                policy.eviction.max_entries or 100_000,
            )
            if stampede.refresh_ahead is not None
            else None
        )
        warm_up = policy.warm_up
        self._warm_up = warm_up if isinstance(warm_up, HotKeyWarmUp) else None
        self._tracker = HotKeyTracker(self._warm_up.top_k) if self._warm_up is not None else None
        self._next_snapshot = core.clock() + (
            self._warm_up.snapshot_interval if self._warm_up is not None else 0.0
        )
        #: Where hot-key snapshots go: a file, else (with SharedTiers) the shared tier, so
        #: the whole fleet warms from one snapshot.
        self._snapshot_file = self._warm_up.snapshot_path if self._warm_up is not None else None
        self._snapshot_shared = (
            self._warm_up is not None
            and self._snapshot_file is None
            and hasattr(store, "put_document")
        )
        #: Whether read-through reads must be noted (one test on the read path).
        self._watches_reads = self._tracker is not None or self._schedule is not None
        # Shared invalidation marks (tag counters, generation), when the store has them.
        self._read_marks: Any = getattr(store, "read_marks", None)
        self._bump_mark: Any = getattr(store, "bump_mark", None)
        self._raise_mark: Any = getattr(store, "raise_mark", None)
        listen = getattr(store, "listen_marks", None)
        if listen is not None:
            listen(core)
        self._next_marks_refresh = core.clock() + MARKS_REFRESH_INTERVAL
        #: The in-process tier: the store itself, or a two-tier store's L1.
        self._local_store: Any = getattr(store, "local", store)
        #: The write-behind journal (set by the cache for WriteBehind namespaces).
        self._journal: Any = None
        #: A staleness auditor fed a sample of served reads (``audit_with``).
        self._auditor: ReadAuditor | None = None
        #: ``module.qualname`` -> the function ``cached`` decorated under that identity.
        self._decorated: dict[str, Callable[..., Any]] = {}

    def audit_with(self, auditor: ReadAuditor | None) -> None:
        """Hand served reads to ``auditor.observe(key, scope, entry)`` (it samples them)."""
        self._auditor = auditor

    def _offer_audit(self, key: object, scope: Scope, entry: Entry | None) -> None:
        self._core.counters.audit_offers += 1
        assert self._auditor is not None
        try:
            self._auditor.observe(key, scope, entry)
        except Exception:  # an auditor must never fail a read
            logger.exception("staleness auditor failed to take a read of %s", self.name)

    # --- invalidation marks: the bookkeeping around the (awaited or not) shared reads ------

    def _unconfirmed(self, tags: Sequence[str]) -> list[str]:
        """The tags whose counters must be read from the shared tier before they are used."""
        if self._read_marks is None or not tags:
            return []
        return self._core.marks.unconfirmed(tags, self._core.clock())

    def _tags_read(self, tags: list[str], counters: list[int]) -> None:
        self._core.marks.learn(dict(zip(tags, counters, strict=True)), self._core.clock())

    def _marks_unreadable(self, what: str, error: StoreError) -> None:
        # Served on what this process knows: counted and logged, as every fallback is.
        self._core.counters.store_errors += 1
        logger.warning("namespace %s: %s not read: %s", self.name, what, error)

    def _tag_floor(self, tag: str) -> int:
        """Validate ``tag``; its counter as known here (the shared bump's floor)."""
        self._check_tag(tag)
        return self._core.marks.counters((tag,))[0]

    def _tag_bumped(self, tag: str, counter: int | None) -> int:
        """Record a tag invalidation: ``counter`` from the shared tier, or None (in-process)."""
        core = self._core
        if counter is None:
            counter = core.marks.bump(tag, core.clock())
        else:
            core.marks.learn({tag: counter}, core.clock())
        core.counters.tag_invalidations += 1
        return counter

    def _generation_moved(self, old_prefix: str) -> int:
        """After a generation bump: drop this process's L1 entries of the old generation."""
        delete_prefix = getattr(self._local_store, "delete_prefix", None)
        return int(delete_prefix(old_prefix)) if delete_prefix is not None else 0

    # --- write patterns: the decisions both facades make before any I/O ------------------

    def _write_pattern(self, writer: object) -> WriteThrough | WriteBehind:
        """The namespace's write pattern, or ``UsageError`` when ``write()`` cannot run."""
        pattern = self._core.policy.pattern
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

    def _writer_failed(self, stored: str) -> None:
        self._core.counters.write_errors += 1
        logger.warning(
            "writer failed, cache left as it was: namespace=%s key=%s", self.name, stored
        )

    def _journal_append(self, key: object, scope: Scope, value: Any, stored: str) -> Any:
        """Append a write-behind write to the journal; returns once it is durable."""
        journal = self._journal
        assert journal is not None
        try:
            record = journal.append(self.name, key, scope, value)
        except Exception:
            self._core.counters.write_errors += 1
            logger.warning(
                "write-behind journal refused a write (not acknowledged): namespace=%s key=%s",
                self.name,
                stored,
            )
            raise
        self._core.counters.journaled += 1
        self._core.counters.writes += 1
        return record

    def _cache_write_failed(self, error: Exception) -> None:
        self._core.counters.store_errors += 1
        logger.warning(
            "write-behind: journaled but not cached (reads may see the source's older value "
            "until it is flushed): namespace=%s error=%s",
            self.name,
            error,
        )

    @property
    def journal(self) -> Any:
        """The write-behind journal a ``Flusher`` drains, or None for other patterns."""
        return self._journal

    def flusher(self, writer: Callable[[Any], object], *, consumer: str) -> Any:
        """A ``Flusher`` applying this namespace's journal through ``writer(record)``, with
        the policy's attempts and backoff (``start()`` it; ``consumer`` names this process)."""
        pattern = self._core.policy.pattern
        if not isinstance(pattern, WriteBehind) or self._journal is None:
            raise UsageError(f"namespace {self.name!r} is not write-behind: nothing to flush")
        from steadycache.write_behind import Flusher

        return Flusher(
            self._journal,
            writer,
            consumer=consumer,
            max_attempts=pattern.max_attempts,
            backoff=pattern.backoff,
            max_backoff=pattern.max_backoff,
        )

    @staticmethod
    def _check_tag(tag: object) -> None:
        check_tag(tag)

    @property
    def name(self) -> str:
        """The namespace's name (the first part of every stored key)."""
        return self._core.name

    @property
    def policy(self) -> Policy:
        """The ten decisions this namespace runs with."""
        return self._core.policy

    @property
    def store(self) -> StoreT:
        """The store holding this namespace's entries."""
        return self._store

    def stored_key(self, key: object, *, scope: Scope = None) -> str:
        """The key as the stores hold it (namespace, generation, scope, key; or its digest)."""
        return self._core.keys.build(key, scope)

    @abstractmethod
    def _refresh_in_background(
        self,
        stored: str,
        loader: LoaderT,
        ttl: Duration | None,
        tags: Iterable[str],
        seen_stored_at: float,
    ) -> None:
        """Reload ``stored`` without making the caller wait.

        ``seen_stored_at`` is when the entry that prompted the refresh was written; a shared
        store holding a newer one means another process refreshed first.
        """

    def _note_read(
        self,
        stored: str,
        key: object,
        scope: Scope,
        loader: LoaderT,
        ttl: Duration | None,
        tags: Iterable[str],
        entry: Entry | None,
    ) -> None:
        """Feed a read-through read to hot-key tracking and refresh-ahead."""
        if self._tracker is not None:
            self._tracker.touch(stored, key, scope)
        if self._schedule is not None:
            self._schedule.read(
                stored,
                loader,
                ttl_seconds(ttl),
                tuple(tags),
                self._core.clock(),
                None if entry is None else (entry.stored_at, entry.fresh_until),
            )

    def _maintain(self, now: float) -> None:
        """One pass of the maintenance worker: due refreshes and the periodic snapshot."""
        if self._schedule is not None:
            for stored, tracked in self._schedule.due(now):
                self._core.counters.refresh_ahead += 1
                loader = cast(LoaderT, tracked.loader)  # the schedule keeps what read() got
                self._refresh_in_background(
                    stored, loader, tracked.ttl, tracked.tags, tracked.stored_at
                )
        if self._warm_up is not None and now >= self._next_snapshot:
            self._next_snapshot = now + self._warm_up.snapshot_interval
            self._snapshot_due()
        if self._read_marks is not None and now >= self._next_marks_refresh:
            # A generation bump whose backplane message was lost is learnt here.
            self._next_marks_refresh = now + MARKS_REFRESH_INTERVAL
            self._marks_due()

    @abstractmethod
    def _marks_due(self) -> None:
        """Re-read the shared generation (now, or as a background task)."""

    @abstractmethod
    def _snapshot_due(self) -> None:
        """Write the periodic hot-key snapshot (now, or as a background task)."""

    def hot_keys(self, n: int | None = None) -> list[tuple[Any, Any, int]]:
        """The hottest keys read through ``get_or_load``: ``(key, scope, estimated reads)``."""
        if self._tracker is None:
            raise UsageError(
                f"namespace {self.name!r} tracks no hot keys: set warm_up=HotKeyWarmUp(...)"
            )
        return self._tracker.top(n)

    def _snapshot_document(self) -> tuple[str, int] | None:
        """The hot keys as a snapshot document and how many, or None when not tracked."""
        if self._tracker is None:
            return None
        hot = self._tracker.top()
        return encode_snapshot(self.name, hot), len(hot)

    def _fresher_than(self, current: Entry | None, seen_stored_at: float) -> bool:
        """Whether ``current`` (read from the shared tier after winning a lease) is a fresh
        value written after the one this process decided on: then another process has
        just loaded it, and loading again would double the origin's work."""
        return (
            current is not None
            and current.stored_at > seen_stored_at
            and current.fresh_until > self._core.clock()
            and (not current.tags or self._core.marks.current(current))
        )

    def _landed_since(self, stored: str, seen: Entry | None) -> Entry | None:
        """A fresh entry stored after ``seen`` was read: another caller's load landed in
        between (its flight already over), so this caller must not load again."""
        peek = getattr(self._store, "peek", None)
        if peek is None:
            return None
        current: Entry | None = peek(stored)
        seen_stored_at = seen.stored_at if seen is not None else float("-inf")
        return current if self._fresher_than(current, seen_stored_at) else None

    def _warm_plan(
        self,
        items: Iterable[tuple[object, LoaderT]] | None,
        loader_for: Callable[[object, Any], LoaderT] | None,
        snapshot: list[tuple[Any, Any]] | None,
    ) -> tuple[HotKeyWarmUp, list[tuple[object, Any, LoaderT]]]:
        """The warm-up settings and ``(key, scope, loader)`` work: given, or the snapshot's."""
        settings = self._warm_up or HotKeyWarmUp()
        if items is not None:
            return settings, [(key, None, loader) for key, loader in items]
        if loader_for is None or snapshot is None:
            raise UsageError(
                "warm() needs items, or loader_for and a hot-key snapshot "
                "(HotKeyWarmUp with a snapshot_path, or with SharedTiers)"
            )
        return settings, [(key, scope, loader_for(key, scope)) for key, scope in snapshot]

    def stats(self) -> NamespaceStats:
        """Counters of this namespace and of its store tier(s)."""
        if self._limiter is not None:
            self._core.counters.breaker_open = int(self._limiter.breaker.is_open)
        tier_stats = getattr(self._store, "tier_stats", None)
        tiers = tier_stats() if tier_stats is not None else (self._store.stats(),)  # type: ignore[attr-defined]
        extra: dict[str, int] = {}
        shared_counters = getattr(self._store, "shared_counters", None)
        if shared_counters is not None:
            extra.update(shared_counters())
        journal = self._journal
        if journal is not None:
            # What the write-behind journal could lose or found lost (README: durability).
            for name in ("appends_at_risk", "lost_entries", "undecodable"):
                extra[name] = int(getattr(journal, name, 0))
        return self._core.stats(tiers, extra)
