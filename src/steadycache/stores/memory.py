"""The in-process store: a dict of entries, bounded by a pluggable eviction policy.

Thread-safe: one lock guards the dict, the policy and the counters. With ``serialize``
set, entries are kept as binary envelopes (as a shared tier would keep them): every read
decodes a private copy, byte accounting is exact, and an unreadable envelope is a miss
counted as ``garbled``, never an exception. Entries past
``stale_until`` are never returned (they count as misses and expirations) and are
reclaimed both lazily, when read, and actively, from an expiry heap drained on writes, so
a namespace that is written but never read again does not keep dead entries.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from steadycache._core.entry import Entry, pack_entry, unpack_entry
from steadycache.codecs import Codec
from steadycache.errors import GarbledEntryError
from steadycache.eviction import DEFAULT_POLICY, make_policy
from steadycache.eviction.base import EvictionPolicy
from steadycache.stores.base import StoreStats

Clock = Callable[[], float]

# The expiry heap keeps one item per write; rebuild it when overwrites leave it this many
# times larger than the store, so memory stays proportional to live entries.
_HEAP_SLACK: Final = 2
# Writes reclaim at most this many expired entries each, bounding the latency of a set.
_RECLAIM_PER_WRITE: Final = 8
# Buffered hits are applied when a writer takes the lock, or by a reader once this many
# wait and the lock is free; past the limit the oldest are dropped (recency is a hint).
_HIT_BUFFER_DRAIN: Final = 64
_HIT_BUFFER_LIMIT: Final = 65_536

logger = logging.getLogger("steadycache")


class _Packed:
    """An entry kept as its envelope; expiry and size readable without decoding."""

    __slots__ = ("blob", "size", "stale_until")

    def __init__(self, blob: bytes, stale_until: float) -> None:
        self.blob = blob
        self.stale_until = stale_until
        self.size = len(blob)


class MemoryStore:
    """An in-process, size-aware store. ``max_bytes`` counts each entry's encoded size."""

    in_process: bool = True

    def __init__(
        self,
        *,
        max_entries: int | None = 10_000,
        max_bytes: int | None = None,
        policy: str = "default",
        clock: Clock = time.time,
        tier: str = "memory",
        serialize: Codec | None = None,
    ) -> None:
        if max_entries is None and max_bytes is None:
            raise ValueError("MemoryStore needs max_entries or max_bytes (unbounded is a leak)")
        name = DEFAULT_POLICY if policy == "default" else policy
        self.policy_name = name
        self.tier = tier
        self._by_bytes = max_bytes is not None
        capacity = max_bytes if max_bytes is not None else max_entries
        assert capacity is not None
        self._policy: EvictionPolicy = make_policy(name, capacity)
        self._on_hit = self._policy.on_hit  # bound once: this is the read hot path
        # Hits are served without the lock whenever entries are kept as objects. A policy
        # whose on_hit is one atomic step takes it at once; the others (ARC, W-TinyLFU, ...)
        # get it through a read buffer that writers drain, under the lock, before any
        # eviction decision, so the policy sees every hit in order (as Caffeine does).
        self._lock_free_reads = serialize is None
        self._immediate_hits = self._policy.concurrent_hits
        self._hit_buffer: deque[str] = deque(maxlen=_HIT_BUFFER_LIMIT)
        # A second limit on entry count when the policy itself counts bytes.
        self._max_entries = max_entries if self._by_bytes else None
        self._codec = serialize
        self._data: dict[str, Entry | _Packed] = {}
        self._expiry_heap: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._clock = clock
        self._bytes = 0
        self._hits = 0
        self._misses = 0
        self._sets = 0
        self._deletes = 0
        self._evictions = 0
        self._expirations = 0
        self._rejections = 0
        self._garbled = 0

    # --- reads ------------------------------------------------------------------------

    def get(self, key: str, now: float | None = None) -> Entry | None:
        """The entry under ``key`` unless absent or past ``stale_until`` (at ``now``)."""
        if now is None:
            now = self._clock()
        if self._lock_free_reads:
            # A dict read is atomic: a live entry is served without the lock. Everything
            # else (a miss, an expired entry) takes the locked path below.
            entry = self._data.get(key)
            if type(entry) is Entry and entry.stale_until > now:
                if self._immediate_hits:
                    try:  # noqa: SIM105 - suppress() costs a context manager per hit
                        self._on_hit(key)
                    except KeyError:
                        pass  # evicted by a writer meanwhile; this read saw a live entry
                else:
                    buffer = self._hit_buffer
                    buffer.append(key)
                    if len(buffer) >= _HIT_BUFFER_DRAIN and self._lock.acquire(blocking=False):
                        try:
                            self._drain_hits()
                        finally:
                            self._lock.release()
                self._hits += 1
                return entry
        with self._lock:
            self._drain_hits()
            entry = self._data.get(key)
            if entry is not None:
                if entry.stale_until > now:
                    if type(entry) is _Packed:
                        return self._unpack(key, entry)
                    self._on_hit(key)
                    self._hits += 1
                    return entry  # type: ignore[return-value]
                self._drop(key, entry)
                self._expirations += 1
            self._misses += 1
            return None

    def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        """``get`` for each key, under one lock acquisition."""
        with self._lock:
            self._drain_hits()
            now = self._clock()
            found: list[Entry | None] = []
            for key in keys:
                entry = self._data.get(key)
                if entry is not None and entry.stale_until <= now:
                    self._drop(key, entry)
                    self._expirations += 1
                    entry = None
                if entry is None:
                    self._misses += 1
                elif type(entry) is _Packed:
                    entry = self._unpack(key, entry)
                else:
                    self._policy.on_hit(key)
                    self._hits += 1
                found.append(entry)  # type: ignore[arg-type]
            return found

    def peek(self, key: str) -> Entry | None:
        """The live entry under ``key`` without counting a read or touching the policy."""
        with self._lock:
            entry = self._data.get(key)
            if entry is None or entry.stale_until <= self._clock() or type(entry) is not Entry:
                return None
            return entry

    def __contains__(self, key: object) -> bool:
        with self._lock:
            entry = self._data.get(key) if isinstance(key, str) else None
            return entry is not None and entry.stale_until > self._clock()

    def __len__(self) -> int:
        return len(self._data)

    # --- writes -----------------------------------------------------------------------

    def set(self, key: str, entry: Entry) -> None:
        """Store ``entry``; may evict others (or refuse ``entry`` if it can never fit)."""
        item = self._prepare(entry)  # encode outside the lock
        with self._lock:
            self._store_locked(key, item, self._clock())

    def set_many(self, items: Mapping[str, Entry]) -> None:
        """``set`` for each item, under one lock acquisition."""
        prepared = [(key, self._prepare(entry)) for key, entry in items.items()]
        with self._lock:
            now = self._clock()
            for key, item in prepared:
                self._store_locked(key, item, now)

    def delete(self, key: str) -> bool:
        """Remove ``key``; whether it was present."""
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return False
            self._drop(key, entry)
            self._deletes += 1
            return True

    def delete_many(self, keys: Sequence[str]) -> int:
        """Remove each key; how many were present."""
        with self._lock:
            removed = 0
            for key in keys:
                entry = self._data.get(key)
                if entry is not None:
                    self._drop(key, entry)
                    removed += 1
            self._deletes += removed
            return removed

    def delete_prefix(self, prefix: str) -> int:
        """Remove every key starting with ``prefix`` (a namespace generation); how many."""
        with self._lock:
            doomed = [key for key in self._data if key.startswith(prefix)]
            for key in doomed:
                self._drop(key, self._data[key])
            self._deletes += len(doomed)
            return len(doomed)

    def clear(self) -> None:
        """Remove everything (counters are kept)."""
        with self._lock:
            for key, entry in list(self._data.items()):
                self._drop(key, entry)
            self._expiry_heap.clear()

    def reclaim_expired(self, limit: int | None = None) -> int:
        """Drop entries past ``stale_until``; how many. Writes call this in small steps."""
        with self._lock:
            return self._reclaim_locked(self._clock(), limit)

    def close(self) -> None:
        """Nothing to release; present for the store contract."""

    # --- introspection ----------------------------------------------------------------

    def stats(self) -> StoreStats:
        """A consistent snapshot of this store's counters and gauges."""
        with self._lock:
            return StoreStats(
                tier=self.tier,
                hits=self._hits,
                misses=self._misses,
                sets=self._sets,
                deletes=self._deletes,
                evictions=self._evictions,
                expirations=self._expirations,
                rejections=self._rejections,
                garbled=self._garbled,
                errors=0,
                entries=len(self._data),
                bytes=self._bytes,
            )

    # --- internals (lock held) --------------------------------------------------------

    def _unpack(self, key: str, packed: _Packed) -> Entry | None:
        assert self._codec is not None
        try:
            entry, payload = unpack_entry(packed.blob, self._codec.codec_id)
            entry.value = self._codec.decode(payload)
        except GarbledEntryError as exc:
            self._drop(key, packed)
            self._garbled += 1
            self._misses += 1
            logger.warning("garbled entry dropped: tier=%s key=%s reason=%s", self.tier, key, exc)
            return None
        self._policy.on_hit(key)
        self._hits += 1
        return entry

    def _prepare(self, entry: Entry) -> Entry | _Packed:
        if self._codec is None:
            return entry
        blob = pack_entry(entry, self._codec.encode(entry.value), self._codec.codec_id)
        return _Packed(blob, entry.stale_until)

    def _drain_hits(self) -> None:
        # Lock held. Hits buffered by lock-free reads reach the policy before anything
        # that may evict; a key removed since its read is skipped.
        buffer = self._hit_buffer
        data = self._data
        on_hit = self._on_hit
        while buffer:
            key = buffer.popleft()
            if key in data:
                on_hit(key)

    def _store_locked(self, key: str, entry: Entry | _Packed, now: float) -> None:
        self._drain_hits()
        self._sets += 1
        if entry.stale_until <= now:
            # Already dead: storing it would only cost an eviction of something useful.
            previous = self._data.get(key)
            if previous is not None:
                self._drop(key, previous)
            return
        size = entry.size if self._by_bytes else 1
        previous = self._data.get(key)
        if previous is None:
            victims = self._policy.on_insert(key, size, entry.stale_until)
        else:
            self._bytes -= previous.size
            victims = self._policy.on_update(key, size, entry.stale_until)
        self._data[key] = entry
        self._bytes += entry.size
        heapq.heappush(self._expiry_heap, (entry.stale_until, key))
        for victim in victims:
            evicted = self._data.pop(victim)  # type: ignore[call-overload]
            self._bytes -= evicted.size
            if victim == key:
                self._rejections += 1
            else:
                self._evictions += 1
        if self._max_entries is not None:
            while len(self._data) > self._max_entries:
                victim = self._policy.evict_one()
                if victim is None:
                    break
                self._bytes -= self._data.pop(victim).size  # type: ignore[call-overload]
                self._evictions += 1
        self._reclaim_locked(now, _RECLAIM_PER_WRITE)

    def _reclaim_locked(self, now: float, limit: int | None) -> int:
        heap = self._expiry_heap
        reclaimed = 0
        while heap and heap[0][0] <= now and (limit is None or reclaimed < limit):
            stale_until, key = heapq.heappop(heap)
            entry = self._data.get(key)
            # The heap keeps an item per write: act only if it is the live entry's item.
            if entry is not None and entry.stale_until == stale_until:
                self._drop(key, entry)
                self._expirations += 1
                reclaimed += 1
        if len(heap) > _HEAP_SLACK * len(self._data) + 64:
            self._expiry_heap = [(entry.stale_until, key) for key, entry in self._data.items()]
            heapq.heapify(self._expiry_heap)
        return reclaimed

    def _drop(self, key: str, entry: Entry | _Packed) -> None:
        del self._data[key]
        self._bytes -= entry.size
        self._policy.on_remove(key)
