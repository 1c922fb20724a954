"""The invalidation bus: named events between services on a Redis Stream.

A service that changes data publishes an event (``hotel.updated {"id": 7}``); every service
that caches that data routes it through its ``EventRouter`` to the keys, tags and
namespaces its policies declare. A Stream rather than pub/sub, because a consumer that was
down must catch up instead of missing invalidations:

- Each service reads through a consumer group named after it, so each service sees every
  event (at least once). Within a service, ONE process receives each event. That is right for
  ``SharedTiers`` namespaces (the delete goes to Redis and the backplane drops every
  process's L1); ``LocalOnly`` namespaces need every process to see every event, so give
  each process its own group (``subscribe(router, group=f"{service}:{host}:{pid}")``).
- The group is created the first time at the stream's current end (what ``$`` means), so
  events from before a service's first start are not replayed: its caches did not exist.
- An event is acknowledged only after routing. A process that dies in between leaves it
  pending; on restart the consumer first re-reads its own pending entries, and entries a
  dead consumer of the same service left behind are claimed after ``claim_idle`` seconds.
  Routing twice is harmless: invalidation is idempotent.
- A routing failure leaves the event pending; it is retried ``retry_after`` seconds later,
  at most ``max_attempts`` times. Then the namespaces the event targets are flushed whole
  and the event is acknowledged (counted ``abandoned``): a flush is never wrong, only
  expensive. If the flush fails too the event stays pending, retried at the same pace.
- The stream is capped (``MAXLEN ~ maxlen``). A service down long enough for events it had
  not read to be trimmed has lost invalidations it cannot name: the bus detects the gap
  (the group's cursor is behind the stream's first entry and entries after it were
  trimmed) and flushes every namespace the router serves (counted ``gaps``). The same
  flush answers pending entries trimmed before their ack and a stream or group deleted
  while the service ran (``gaps`` too), and entries it cannot read (``malformed``).
- Connection errors are counted and logged; the consumer thread retries with backoff, and
  the group's cursor makes catch-up after an outage automatic.

Needs Redis 7.0+ or Valkey (``XAUTOCLAIM``, ``XGROUP CREATE ... ENTRIESREAD``). Consume with
``start()`` (a thread) or by calling ``poll_once()`` from one thread of your own, not both.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import threading
import time
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from steadycache.errors import ConfigurationError, SerializationError, StoreError, UsageError
from steadycache.policy import checks

if TYPE_CHECKING:
    import redis

    from steadycache.invalidation.router import InvalidationTarget

logger = logging.getLogger("steadycache")

#: Field names in a stream entry; ``v`` lets a later format be told apart from this one.
FORMAT_VERSION: Final = "1"
MAX_EVENT_LENGTH: Final = 200
MAX_PAYLOAD_BYTES: Final = 64 * 1024
_RECONNECT_PAUSE: Final = 0.1
_RECONNECT_PAUSE_MAX: Final = 5.0
_MAX_TRACKED_FAILURES: Final = 10_000

StreamId = tuple[int, int]
Fields = Mapping[Any, Any]


class EventSink(Protocol):
    """What the bus routes to: ``EventRouter`` satisfies it."""

    def route(self, event: str, payload: Mapping[str, object]) -> int: ...

    def invalidate_everything(self, reason: str) -> int: ...

    @property
    def targets(self) -> list[InvalidationTarget]: ...


@dataclass
class BusCounters:
    """What the bus did since it was made."""

    published: int = 0
    #: Entries read: new ones, own pending ones re-read, and ones claimed from dead peers.
    received: int = 0
    #: Entries routed and acknowledged.
    routed: int = 0
    #: Routing attempts that raised (the entry stays pending and is retried).
    failures: int = 0
    #: Entries given up after ``max_attempts``: their namespaces flushed instead.
    abandoned: int = 0
    #: Lost events detected (trimmed unread, trimmed while pending, group or stream gone).
    gaps: int = 0
    #: Entries that were not a readable event (flushed everything, acknowledged).
    malformed: int = 0
    #: Entries claimed from consumers of this service idle longer than ``claim_idle``.
    claimed: int = 0
    connection_errors: int = 0
    #: Successful polls after connection errors.
    reconnects: int = 0
    #: Polls that failed for another reason (logged with their traceback).
    poll_errors: int = 0


def validate_event(event: object) -> str:
    """``event`` if it is a usable event name; ``UsageError`` naming the problem if not."""
    if not isinstance(event, str):
        raise UsageError(f"an event name is a str, got {type(event).__name__}")
    if not event or event != event.strip():
        raise UsageError(f"event name {event!r} is empty or has surrounding whitespace")
    if len(event) > MAX_EVENT_LENGTH:
        raise UsageError(
            f"event name of {len(event)} characters is over the limit of {MAX_EVENT_LENGTH}"
        )
    if any(unicodedata.category(char).startswith("C") for char in event):
        raise UsageError(f"event name {event!r} contains control or invisible characters")
    return event


def encode_payload(event: str, payload: object) -> str:
    """``payload`` as compact JSON, or an error naming the offending field; nothing written."""
    if not isinstance(payload, Mapping):
        raise UsageError(
            f"event {event!r}: the payload is a mapping of field names to JSON values, "
            f"got {type(payload).__name__}"
        )
    for name, value in payload.items():
        if not isinstance(name, str):
            raise UsageError(f"event {event!r}: payload field name {name!r} is not a str")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise SerializationError(
                f"event {event!r}: payload field {name!r} ({type(value).__name__}) is not "
                f"JSON-serialisable: {exc}"
            ) from exc
    text = json.dumps(payload, allow_nan=False, separators=(",", ":"), sort_keys=True)
    if len(text.encode()) > MAX_PAYLOAD_BYTES:
        raise SerializationError(
            f"event {event!r}: payload encodes to {len(text.encode())} bytes, over the limit "
            f"of {MAX_PAYLOAD_BYTES}; send ids, not data"
        )
    return text


def decode_event(fields: Fields) -> tuple[str, dict[str, object]] | None:
    """The event and payload of a stream entry, or None when it is not one we can read."""
    text = {_text(name): _text(value) for name, value in fields.items()}
    if text.get("v") != FORMAT_VERSION or "event" not in text:
        return None
    try:
        payload = json.loads(text.get("payload", "{}"))
        event = validate_event(text["event"])
    except (ValueError, UsageError):
        return None
    return (event, payload) if isinstance(payload, dict) else None


def parse_id(value: object) -> StreamId:
    """A stream id (``b"1700000000000-3"``) as a comparable pair."""
    milliseconds, _, sequence = _text(value).partition("-")
    return int(milliseconds), int(sequence or 0)


def lost_entries(group: Mapping[str, Any], stream: Mapping[str, Any]) -> int | None:
    """How many entries the group never read were trimmed away; None when unknown but > 0.

    The group's cursor being behind the stream's first entry is necessary for a gap, not
    sufficient (the entries in between may never have existed): with the counters Redis 7
    keeps (``entries-added``, ``entries-read``) the trimmed-but-unread count is exact. Without
    them, a cursor behind the first entry is taken as a gap: a needless flush is safe.
    """
    first = stream.get("first-entry")
    if not first or first[0] is None:
        return 0
    if parse_id(first[0]) <= parse_id(group["last-delivered-id"]):
        return 0
    read, added, length = group.get("entries-read"), stream.get("entries-added"), stream["length"]
    if read is None or added is None:
        return None
    return max(0, int(added) - int(length) - int(read))


class InvalidationBus:
    """Publishes invalidation events and routes the ones other services publish. Thread-safe.

    ``client`` is a redis-py client the caller owns (the bus never closes it); its socket
    timeout must exceed ``block``, the seconds a read waits for new events.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        service: str,
        stream: str = "steadycache:events",
        maxlen: int = 100_000,
    ) -> None:
        if not isinstance(service, str) or not service or service != service.strip():
            raise ConfigurationError(
                "invalidation", f"the bus needs a service name, got {service!r}"
            )
        checks.integer(maxlen, decision="invalidation", what="bus maxlen")
        # Typed Any: redis-py annotates replies as "Awaitable | Any" for both client flavours.
        self._client: Any = client
        self.service = service
        self.stream = stream
        self.maxlen = maxlen
        self.counters = BusCounters()
        self._lock = threading.Lock()
        self._router: EventSink | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.group = service
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        self._block = 1.0
        self._batch = 100
        self._claim_idle = 30.0
        self._max_attempts = 5
        self._retry_after = 1.0
        # Consumer state, touched only by the thread that polls.
        self._recover = True
        self._next_claim = 0.0
        self._retry_at = math.inf
        self._attempts: dict[str, int] = {}
        self._last_gap: tuple[StreamId, StreamId] | None = None
        self._failing = False
        self._redis_errors = _redis_errors()

    # --- publishing -----------------------------------------------------------------------

    def publish(self, event: str, payload: Mapping[str, object] | None = None) -> str:
        """Append ``event`` to the stream; its id. Bad names or payloads raise before writing."""
        event = validate_event(event)
        text = encode_payload(event, {} if payload is None else payload)
        fields = {"v": FORMAT_VERSION, "event": event, "payload": text, "service": self.service}
        try:
            entry_id = self._client.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)
        except Exception as exc:
            raise StoreError(f"redis XADD of event {event!r} to {self.stream!r} failed") from exc
        with self._lock:
            self.counters.published += 1
        return _text(entry_id)

    # --- consuming ------------------------------------------------------------------------

    def subscribe(
        self,
        router: EventSink,
        *,
        consumer: str | None = None,
        group: str | None = None,
        block: float = 1.0,
        batch: int = 100,
        claim_idle: float = 30.0,
        max_attempts: int = 5,
        retry_after: float = 1.0,
    ) -> None:
        """Route this service's events to ``router``; then ``start()``, or ``poll_once()``.

        ``consumer`` names this process within the group (default host-pid); a name that
        survives restarts (a pod name) lets a restarted process re-read its own pending
        events at once instead of after ``claim_idle``. ``group`` defaults to the service.
        """
        if self._router is not None:
            raise UsageError("this bus is already subscribed; one router per bus")
        if batch < 1 or max_attempts < 1 or claim_idle <= 0 or retry_after < 0:
            raise ConfigurationError(
                "invalidation",
                "subscribe needs batch >= 1, max_attempts >= 1, claim_idle > 0, "
                f"retry_after >= 0; got {batch}, {max_attempts}, {claim_idle}, {retry_after}",
            )
        timeout = self._socket_timeout()
        if timeout is not None and block > 0 and timeout <= block:
            raise ConfigurationError(
                "invalidation",
                f"the client's socket_timeout ({timeout}s) must exceed the bus's block "
                f"({block}s), or every idle read times out",
            )
        self._router = router
        self.consumer = consumer or self.consumer
        self.group = group or self.service
        self._block = block
        self._batch = batch
        self._claim_idle = claim_idle
        self._max_attempts = max_attempts
        self._retry_after = retry_after

    def start(self) -> None:
        """Poll on a daemon thread until ``stop()``, reconnecting with backoff."""
        self._require_router()
        if self._thread is not None:
            return
        self._stopping.clear()
        self._recover = True  # a restarted consumer first finishes its own pending entries
        self._thread = threading.Thread(
            target=self._run, name=f"steadycache-bus-{self.service}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread (after its current read, at most ``block`` seconds)."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def poll_once(self, block: float | None = None) -> int:
        """One round: recover pending work, detect gaps, read and route new events.

        Returns how many entries were handled. Redis errors propagate (the thread counts
        them and backs off); ``block`` overrides the subscription's wait, 0 does not wait.
        """
        router = self._require_router()
        handled = 0
        try:
            if self._recover:
                # Startup or after an outage: make sure the group exists, then finish what
                # this consumer read but never acknowledged.
                self._ensure_group()
                self._retry_at = math.inf
                handled += self._read_own_pending(router)
                self._recover = False
            now = time.monotonic()
            if now >= self._next_claim:
                self._next_claim = now + self._claim_idle
                handled += self._claim_from_dead_peers(router)
            if now >= self._retry_at:
                self._retry_at = math.inf
                handled += self._read_own_pending(router)
            self._check_gap(router)
            wait = self._block if block is None else block
            reply = self._client.xreadgroup(
                self.group,
                self.consumer,
                {self.stream: ">"},
                count=self._batch,
                block=int(wait * 1000) if wait > 0 else None,
            )
            handled += self._handle(router, _entries(reply))
        except self._redis_errors.response as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._group_vanished(router)
        return handled

    # --- steps ----------------------------------------------------------------------------

    def _run(self) -> None:
        pause = _RECONNECT_PAUSE
        while not self._stopping.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # the thread must outlive any failure to keep invalidating
                if isinstance(exc, self._redis_errors.connection):
                    self.counters.connection_errors += 1
                    logger.warning(
                        "invalidation bus %s: redis unreachable (%r); retrying in %.1fs",
                        self.service,
                        exc,
                        pause,
                    )
                else:
                    self.counters.poll_errors += 1
                    logger.exception("invalidation bus %s: poll failed", self.service)
                # Whatever was read but not acknowledged is re-read once polling works again.
                self._failing = self._recover = True
                self._stopping.wait(pause)
                pause = min(pause * 2, _RECONNECT_PAUSE_MAX)
                continue
            if self._failing:
                self._failing = False
                self.counters.reconnects += 1
                logger.info("invalidation bus %s: redis reachable again", self.service)
            pause = _RECONNECT_PAUSE

    def _ensure_group(self) -> None:
        """Create the group at the stream's current end, unless it exists.

        Created at the last id with its entry count (not with ``$``), so Redis tracks how
        many entries the group has read from the start: that is what gap detection needs.
        """
        try:
            info = self._client.xinfo_stream(self.stream)
            last, added = _text(info["last-generated-id"]), info.get("entries-added")
        except self._redis_errors.response as exc:
            if "no such key" not in str(exc).lower():
                raise
            last, added = "0-0", 0
        try:
            self._client.xgroup_create(
                self.stream, self.group, id=last, mkstream=True, entries_read=added
            )
        except self._redis_errors.response as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            return
        logger.info("invalidation bus: group %s created on %s at %s", self.group, self.stream, last)

    def _read_own_pending(self, router: EventSink) -> int:
        """Re-read what this consumer was delivered but never acknowledged."""
        handled, cursor = 0, "0"
        while True:
            reply = self._client.xreadgroup(
                self.group, self.consumer, {self.stream: cursor}, count=self._batch
            )
            entries = _entries(reply)
            if not entries:
                return handled
            handled += self._handle(router, entries)
            cursor = _text(entries[-1][0])

    def _claim_from_dead_peers(self, router: EventSink) -> int:
        """Take over entries other consumers of this group left pending for ``claim_idle``."""
        handled, cursor = 0, "0-0"
        while True:
            reply = self._client.xautoclaim(
                self.stream,
                self.group,
                self.consumer,
                int(self._claim_idle * 1000),
                start_id=cursor,
                count=self._batch,
            )
            cursor, entries = _text(reply[0]), list(reply[1])
            deleted = list(reply[2]) if len(reply) > 2 else []
            self.counters.claimed += len(entries)
            if entries:
                logger.info(
                    "invalidation bus %s: claimed %d pending events from idle consumers",
                    self.service,
                    len(entries),
                )
                handled += self._handle(router, entries)
            if deleted:
                # Pending at a dead consumer and trimmed before anyone acknowledged them.
                self._lost(router, f"{len(deleted)} pending events trimmed before their ack")
            if cursor == "0-0":
                return handled

    def _check_gap(self, router: EventSink) -> None:
        pipe = self._client.pipeline(transaction=False)
        pipe.xinfo_groups(self.stream)
        pipe.xinfo_stream(self.stream)
        try:
            groups, stream = pipe.execute()
        except self._redis_errors.response as exc:
            if "no such key" not in str(exc).lower():
                raise
            self._group_vanished(router)
            return
        group = next((g for g in groups if _text(g["name"]) == self.group), None)
        if group is None:
            self._group_vanished(router)
            return
        lost = lost_entries(group, stream)
        if lost == 0:
            return
        signature = (parse_id(group["last-delivered-id"]), parse_id(stream["first-entry"][0]))
        if signature == self._last_gap:
            return  # already flushed for this gap (the read after it failed)
        count = "an unknown number of" if lost is None else str(lost)
        self._lost(router, f"{count} events trimmed (MAXLEN {self.maxlen}) before group read them")
        self._last_gap = signature  # only once the flush succeeded

    def _group_vanished(self, router: EventSink) -> None:
        self._ensure_group()
        self._lost(router, f"stream {self.stream!r} or group {self.group!r} was deleted")

    def _lost(self, router: EventSink, reason: str) -> None:
        """Invalidations were lost and cannot be named: flush everything the router serves."""
        self.counters.gaps += 1
        logger.warning(
            "invalidation bus %s: %s; invalidating every namespace with triggers",
            self.service,
            reason,
        )
        router.invalidate_everything(f"invalidation bus: {reason}")

    def _handle(self, router: EventSink, entries: Sequence[tuple[Any, Fields]]) -> int:
        """Route each entry; acknowledge the ones routed (or settled otherwise) in one call."""
        done: list[str] = []
        trimmed: list[str] = []
        unreadable: list[str] = []
        for raw_id, fields in entries:
            entry_id = _text(raw_id)
            self.counters.received += 1
            decoded = decode_event(fields) if fields else None
            if not fields:
                trimmed.append(entry_id)  # delivered earlier, trimmed before it was acknowledged
            elif decoded is None:
                unreadable.append(entry_id)  # not an event this version can name targets of
            elif self._route(router, entry_id, *decoded):
                done.append(entry_id)
        if trimmed:
            self._lost(router, f"{len(trimmed)} pending events trimmed before their ack")
        if unreadable:
            self.counters.malformed += len(unreadable)
            logger.warning(
                "invalidation bus %s: unreadable entries %s; invalidating every namespace",
                self.service,
                ", ".join(unreadable),
            )
            router.invalidate_everything(f"invalidation bus: {len(unreadable)} unreadable entries")
        done += trimmed + unreadable  # settled only now that the flushes succeeded
        if done:
            self._client.xack(self.stream, self.group, *done)
        return len(entries)

    def _route(self, router: EventSink, entry_id: str, event: str, payload: Any) -> bool:
        """Whether the entry is settled (routed, or given up after flushing its targets)."""
        try:
            router.route(event, payload)
        except Exception:
            self.counters.failures += 1
            attempts = self._attempts.get(entry_id, 0) + 1
            logger.exception(
                "invalidation bus %s: routing %s (%s) failed, attempt %d of %d",
                self.service,
                event,
                entry_id,
                attempts,
                self._max_attempts,
            )
            self._retry_at = min(self._retry_at, time.monotonic() + self._retry_after)
            if attempts < self._max_attempts or not self._flush_targets(router, event):
                if len(self._attempts) >= _MAX_TRACKED_FAILURES:
                    # Bounded: forgetting a count only buys an entry a few more attempts.
                    self._attempts.clear()
                self._attempts[entry_id] = attempts
                return False
            self._attempts.pop(entry_id, None)
            self.counters.abandoned += 1
            return True
        self._attempts.pop(entry_id, None)
        self.counters.routed += 1
        return True

    def _flush_targets(self, router: EventSink, event: str) -> bool:
        """Flush every namespace declaring ``event``; whether all flushes succeeded."""
        try:
            for target in _targets_of(router.targets, event):
                target.invalidate_all()
        except Exception:
            logger.exception(
                "invalidation bus %s: flushing the namespaces of %s failed; keeping it pending",
                self.service,
                event,
            )
            return False
        logger.warning(
            "invalidation bus %s: gave up routing %s after %d attempts; flushed its namespaces",
            self.service,
            event,
            self._max_attempts,
        )
        return True

    def _require_router(self) -> EventSink:
        if self._router is None:
            raise UsageError("call bus.subscribe(router) before start() or poll_once()")
        return self._router

    def _socket_timeout(self) -> float | None:
        pool = getattr(self._client, "connection_pool", None)
        kwargs = getattr(pool, "connection_kwargs", {})
        timeout = kwargs.get("socket_timeout") if isinstance(kwargs, dict) else None
        return float(timeout) if isinstance(timeout, int | float) else None


@dataclass(frozen=True)
class _RedisErrors:
    response: type[Exception]
    connection: tuple[type[BaseException], ...]


def _redis_errors() -> _RedisErrors:
    import redis

    return _RedisErrors(
        response=redis.ResponseError,
        connection=(redis.ConnectionError, redis.TimeoutError, OSError),
    )


def _targets_of(targets: Iterable[InvalidationTarget], event: str) -> list[InvalidationTarget]:
    return [
        target
        for target in targets
        if any(trigger.event == event for trigger in target.policy.invalidation.triggers)
    ]


def _entries(reply: Any) -> list[tuple[Any, Fields]]:
    """The entries of an XREADGROUP reply for one stream (RESP2 list or RESP3 map)."""
    if not reply:
        return []
    if isinstance(reply, dict):
        (batches,) = reply.values()
        return [entry for batch in batches for entry in batch]
    return list(reply[0][1])


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


__all__ = ["BusCounters", "EventSink", "InvalidationBus"]
