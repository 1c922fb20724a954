"""The shared journal: a Redis Stream read through a consumer group.

Keys (give ``stream`` a hash tag, e.g. ``"{orders}:write-behind"``, on a Redis Cluster: the
scripts touch all of them at once, so they must share a slot):

- ``<stream>``: one entry per acknowledged write (fields ``identity``, ``record``). An entry is
  XACKed *and* XDELed when it leaves, so ``XLEN`` is the depth and the first entry the lag.
- ``<stream>:dead``: dead letters (the original fields plus ``error``, ``attempts``, ...).
- ``<stream>:keys``: per key identity, how many of its entries are in the stream.
- ``<stream>:applied``: per key identity with entries still waiting, the newest applied
  sequence; an older entry claimed later is acknowledged as superseded, never applied.
- ``<stream>:retry``: entries rescheduled after a failure, with the error; a claimed entry
  found here is a retry, any other idle entry was abandoned by a flusher (``recovered``).
- ``<stream>:index``: every entry as ``<identity>:<sequence>``, so that a claim finds all the
  entries of a key (see ``redis_scripts``).

Leases are the pending-entries list. A claim is one script (``redis_scripts.CLAIM``): it reads
new entries from the group and parks them (delivery count 0), then decides key by key, as
``ordering`` says, which parked, due-for-retry or abandoned (idle for ``min_idle``) entries to
hand out, and XCLAIMs those. A retry is the same mechanism: the failed entry's idle time is set
(XCLAIM ... IDLE) so that it becomes claimable after the backoff delay, which is therefore
capped at the ``min_idle`` of the claim that delivered it. The delivery count kept by Redis
(XPENDING) is the record's ``attempts``.

Durability is checked once, at construction (see the package docstring for what can be lost).
A ``CONFIG SET`` that weakens persistence afterwards is not noticed.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

import redis
from redis.exceptions import RedisError, ResponseError

from steadycache.errors import ConfigurationError, GarbledEntryError, StoreError, UsageError
from steadycache.write_behind import redis_scripts
from steadycache.write_behind.journal import DeadLetter
from steadycache.write_behind.records import (
    WriteRecord,
    decode_record,
    encode_record,
    new_record,
    record_identity,
)

__all__ = ["DEFAULT_GROUP", "RedisStreamJournal"]

logger = logging.getLogger("steadycache")

DEFAULT_GROUP: Final = "steadycache-flushers"

#: Pending entries one claim looks at per entry it may hand out (XAUTOCLAIM's own ratio).
_SCAN_PER_CLAIMED: Final = 10

LOSS_WITHOUT_AOF: Final = (
    "appendonly is no: the journal lives in memory, so every acknowledged write not yet "
    "flushed to the source is lost when Redis restarts, crashes or is killed (an RDB "
    "snapshot, if any, restores only what existed at the last save)"
)
LOSS_EVERYSEC: Final = (
    "appendfsync is everysec: Redis writes the AOF before it replies, so a crash of the Redis "
    "process loses nothing, but a crash of the machine (power loss, kernel panic, a VM "
    "stopped) loses the acknowledged writes of the last 1-2 seconds"
)
LOSS_FSYNC_NO: Final = (
    "appendfsync is no: the operating system decides when the AOF reaches the disk "
    "(typically within 30 seconds), so a crash of the machine loses the acknowledged writes "
    "of up to that long"
)
LOSS_NO_CONFIG: Final = (
    "CONFIG is disabled on this server, so steadycache cannot verify that the AOF is on with "
    "appendfsync always; a server without it loses acknowledged writes in a restart"
)


def _text(value: Any) -> str:
    """Replies are bytes or str depending on the caller's ``decode_responses``."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {_text(name): _text(value) for name, value in raw.items()}


def _sequence(stream_id: str) -> str:
    """``1700000000000-5`` -> fixed-width digits, so string order is stream order."""
    milliseconds, _, counter = stream_id.partition("-")
    return f"{int(milliseconds):020d}-{int(counter or 0):020d}"


def _stream_id(sequence: str) -> str:
    milliseconds, _, counter = sequence.partition("-")
    return f"{int(milliseconds)}-{int(counter)}"


class RedisStreamJournal:
    """A write-behind journal in a Redis Stream, refused unless durable or the loss accepted."""

    def __init__(
        self,
        client: redis.Redis,
        stream: str,
        group: str = DEFAULT_GROUP,
        *,
        accept_loss: str | None = None,
        wait_replicas: int = 0,
        wait_timeout: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not stream:
            raise UsageError("RedisStreamJournal needs a stream name")
        if accept_loss is not None and not accept_loss.strip():
            raise ConfigurationError(
                "pattern", "WriteBehind accept_loss must say who accepted the loss and why"
            )
        if isinstance(wait_replicas, bool) or wait_replicas < 0:
            raise ConfigurationError(
                "pattern", f"wait_replicas must be an int >= 0, got {wait_replicas!r}"
            )
        # Typed Any: redis-py annotates replies as "Awaitable | Any" for its sync and async
        # clients alike; each reply is checked where it is read.
        self._client: Any = client
        self.stream = stream
        self.group = group
        self.dead_stream = f"{stream}:dead"
        self._keys_hash = f"{stream}:keys"
        self._applied_hash = f"{stream}:applied"
        self._retry_hash = f"{stream}:retry"
        self._index = f"{stream}:index"
        self._wait_replicas = wait_replicas
        self._wait_timeout_ms = max(1, int(wait_timeout * 1000))
        self._clock = clock
        self._lock = threading.Lock()
        self._cursor = "0-0"
        # Until a claim says otherwise, a retry is due after its delay counted from this.
        self._min_idle_ms = 30_000
        self.appends_at_risk = 0
        self.undecodable = 0
        self.lost_entries = 0
        self._append_script = client.register_script(redis_scripts.APPEND)
        self._claim_script = client.register_script(redis_scripts.CLAIM)
        self._ack_script = client.register_script(redis_scripts.ACK)
        self._retry_script = client.register_script(redis_scripts.RETRY)
        self._dead_script = client.register_script(redis_scripts.DEAD)

        self.durable, self.durability = self._check_durability()
        if not self.durable:
            if accept_loss is None:
                raise ConfigurationError(
                    "pattern",
                    f"write-behind journal {stream!r} on Redis is not durable: "
                    f"{self.durability}. Make it durable (appendonly yes with appendfsync "
                    "always, or wait_replicas>=1 with replicas attached) or accept the loss "
                    "explicitly: WriteBehind(accept_loss='who accepted it and why')",
                )
            logger.warning(
                "write-behind journal %r on Redis is not durable (%s); accepted: %s",
                stream,
                self.durability,
                accept_loss,
            )
        self._create_group()

    def _check_durability(self) -> tuple[bool, str]:
        if self._wait_replicas >= 1:
            return True, f"each append waits for {self._wait_replicas} replica(s) (WAIT)"
        try:
            appendonly = self._config("appendonly")
            appendfsync = self._config("appendfsync")
        except ResponseError:
            return False, LOSS_NO_CONFIG
        except RedisError as exc:
            raise StoreError(f"cannot reach Redis for the write-behind journal: {exc}") from exc
        if appendonly != "yes":
            return False, LOSS_WITHOUT_AOF
        if appendfsync == "always":
            return True, "appendonly yes, appendfsync always: fsynced before Redis replies"
        if appendfsync == "everysec":
            return False, LOSS_EVERYSEC
        return False, LOSS_FSYNC_NO

    def _config(self, name: str) -> str:
        reply = self._client.config_get(name)
        values = {_text(k): _text(v) for k, v in dict(reply).items()}
        return values.get(name, "").lower()

    def _create_group(self) -> None:
        try:
            # From "0", not "$": entries appended before the group existed must be delivered.
            self._client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise StoreError(f"cannot create consumer group {self.group!r}: {exc}") from exc
        except RedisError as exc:
            raise StoreError(f"cannot create consumer group {self.group!r}: {exc}") from exc

    # -- the Journal protocol --

    def append(
        self,
        namespace: str,
        key: Any,
        scope: Mapping[str, Any] | None,
        value: Any,
        *,
        op: str = "set",
    ) -> WriteRecord:
        record = new_record(
            namespace,
            key,
            scope,
            value,
            op=op,
            idempotency_key=uuid.uuid4().hex,
            enqueued_at=self._clock(),
        )
        text = encode_record(record)  # refuses what cannot round-trip, before any write
        keys = [self.stream, self._keys_hash, self._index]
        args = [record_identity(record), text]
        try:
            if self._wait_replicas:
                # WAIT counts the replication offset of *this connection's* last write, so it
                # must follow the XADD on the same connection: one non-transactional pipeline.
                pipe = self._client.pipeline(transaction=False)
                self._append_script(keys=keys, args=args, client=pipe)
                pipe.execute_command("WAIT", self._wait_replicas, self._wait_timeout_ms)
                stream_id, acknowledged = pipe.execute()
            else:
                stream_id, acknowledged = self._append_script(keys=keys, args=args), None
        except RedisError as exc:
            raise StoreError(
                f"write-behind append to {self.stream!r} failed; the write is not acknowledged"
            ) from exc
        if acknowledged is not None and int(acknowledged) < self._wait_replicas:
            raise StoreError(
                f"write-behind append to {self.stream!r}: only {acknowledged} of "
                f"{self._wait_replicas} replica(s) confirmed it within "
                f"{self._wait_timeout_ms} ms, so it is not acknowledged (the entry stays in "
                "the journal and may still be applied: treat the outcome as unknown)"
            )
        if not self.durable:
            self.appends_at_risk += 1
        return replace(record, sequence=_sequence(_text(stream_id)))

    def claim(self, consumer: str, count: int, min_idle: float) -> list[WriteRecord]:
        if count <= 0:
            return []
        min_idle_ms = max(0, int(min_idle * 1000))
        with self._lock:
            self._min_idle_ms = min_idle_ms
        try:
            return self._claim(consumer, count, min_idle_ms)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise StoreError(f"write-behind claim on {self.stream!r} failed: {exc}") from exc
            # The stream was deleted under us (FLUSHDB, a restart without persistence): start
            # a new group; whatever was lost with the stream is gone either way.
            logger.error("write-behind: stream %r lost its consumer group; recreated", self.stream)
            self._create_group()
            return []
        except RedisError as exc:
            raise StoreError(f"write-behind claim on {self.stream!r} failed: {exc}") from exc

    def _claim(self, consumer: str, count: int, min_idle_ms: int) -> list[WriteRecord]:
        with self._lock:
            cursor = self._cursor
        # One script: the claim decides each key as a whole (``ordering``), which only holds
        # if no other consumer's claim, retry or ack runs in between.
        reply = self._claim_script(
            keys=[self.stream, self._keys_hash, self._applied_hash, self._retry_hash, self._index],
            args=[self.group, consumer, count, min_idle_ms, cursor, count * _SCAN_PER_CLAIMED],
        )
        next_cursor, deleted, *flat = reply
        with self._lock:
            self._cursor = _text(next_cursor)
        if int(deleted):
            # In the pending list but not in the stream: removed outside the journal (XTRIM,
            # XDEL by hand). Those writes are lost; say so loudly.
            self.lost_entries += int(deleted)
            logger.error(
                "write-behind: %d pending entries of %r were deleted outside the journal: "
                "those acknowledged writes are lost",
                int(deleted),
                self.stream,
            )
        records: list[WriteRecord] = []
        for at in range(0, len(flat), 5):
            entry_id, text, attempts, recovered, mark = flat[at : at + 5]
            sequence = _sequence(_text(entry_id))
            try:
                record = decode_record(
                    text,
                    sequence=sequence,
                    attempts=int(attempts),
                    recovered=bool(int(recovered)),
                    superseded=bool(mark) and sequence <= _text(mark),
                )
            except GarbledEntryError as exc:
                # Left pending, not deleted: a newer flusher may read a newer format.
                self.undecodable += 1
                logger.error(
                    "write-behind: entry %s unreadable, left in place: %s", _text(entry_id), exc
                )
                continue
            records.append(record)
        records.sort(key=lambda record: record.sequence)
        return records

    def _ack(self, applied: WriteRecord | None, records: Sequence[WriteRecord]) -> list[int]:
        args: list[str] = [self.group]
        if applied is None:
            args += ["", ""]
        else:
            args += [applied.sequence, record_identity(applied)]
        for record in records:
            args += [_stream_id(record.sequence), record_identity(record)]
        try:
            reply = self._ack_script(
                keys=[
                    self.stream,
                    self._keys_hash,
                    self._applied_hash,
                    self._retry_hash,
                    self._index,
                ],
                args=args,
            )
        except RedisError as exc:
            raise StoreError(f"write-behind ack on {self.stream!r} failed: {exc}") from exc
        return [int(flag) for flag in reply]

    def complete(self, applied: WriteRecord, superseded: Sequence[WriteRecord] = ()) -> int:
        removed = self._ack(applied, [applied, *superseded])
        return sum(removed[1:])

    def ack(self, records: Sequence[WriteRecord]) -> None:
        if records:
            self._ack(None, records)

    def retry_later(self, record: WriteRecord, delay: float, error: str) -> bool:
        with self._lock:
            idle_ms = max(0, self._min_idle_ms - int(delay * 1000))
        try:
            done = self._retry_script(
                keys=[self.stream, self._retry_hash],
                args=[self.group, _stream_id(record.sequence), record.attempts, idle_ms, error],
            )
        except RedisError as exc:
            raise StoreError(f"write-behind retry on {self.stream!r} failed: {exc}") from exc
        return int(done) == 1

    def dead_letter(self, record: WriteRecord, error: str) -> bool:
        try:
            done = self._dead_script(
                keys=[
                    self.stream,
                    self._keys_hash,
                    self._applied_hash,
                    self._retry_hash,
                    self.dead_stream,
                    self._index,
                ],
                args=[
                    self.group,
                    _stream_id(record.sequence),
                    record_identity(record),
                    record.attempts,
                    encode_record(record),
                    record.sequence,
                    error,
                    repr(self._clock()),
                ],
            )
        except RedisError as exc:
            raise StoreError(f"write-behind dead letter on {self.stream!r} failed: {exc}") from exc
        return int(done) == 1

    def depth(self) -> int:
        try:
            return int(self._client.xlen(self.stream))
        except RedisError as exc:
            raise StoreError(f"write-behind depth of {self.stream!r} failed: {exc}") from exc

    def lag(self) -> float:
        try:
            oldest = self._client.xrange(self.stream, "-", "+", count=1)
        except RedisError as exc:
            raise StoreError(f"write-behind lag of {self.stream!r} failed: {exc}") from exc
        if not oldest:
            return 0.0
        entry_id, fields = oldest[0]
        try:
            enqueued_at = decode_record(
                _fields(fields).get("record", ""), sequence="", attempts=0
            ).enqueued_at
        except GarbledEntryError:
            enqueued_at = int(_text(entry_id).partition("-")[0]) / 1000.0  # Redis's own clock
        return max(0.0, self._clock() - enqueued_at)

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        if limit <= 0:
            return []
        try:
            entries = self._client.xrange(self.dead_stream, "-", "+", count=limit)
        except RedisError as exc:
            raise StoreError(f"write-behind dead letters of {self.stream!r} failed: {exc}") from exc
        letters: list[DeadLetter] = []
        for entry_id, raw in entries:
            fields = _fields(raw)
            try:
                record = decode_record(
                    fields.get("record", ""),
                    sequence=fields.get("sequence", ""),
                    attempts=int(fields.get("attempts", "0")),
                )
            except (GarbledEntryError, ValueError) as exc:
                logger.error("write-behind: dead letter %s unreadable: %s", _text(entry_id), exc)
                continue
            letters.append(DeadLetter(record, fields.get("error", "")))
        return letters

    def close(self) -> None:
        """Nothing to release: the Redis client belongs to the caller."""
