"""Write-behind: a write is acknowledged once it is in a durable journal; a flusher applies the
journal to the source later, with retries, backoff, coalescing and idempotency keys.

::

    Namespace.write -> Journal.append (durable) -> ack to the caller
    Flusher.run_once: Journal.claim -> coalesce per key -> writer(record) -> Journal.complete
                                                        \\-> retry_later / dead_letter

``SqliteJournal`` is the embedded default; ``RedisStreamJournal`` is shared by every process
that reaches the Redis server (import it from here; it needs the ``redis`` extra). Delivery is
at-least-once and the writer makes repeats harmless: see ``flusher`` for the contract and the
coalescing rule.

What can be lost, and when
--------------------------

An acknowledged write (``append`` returned) stays in the journal until the flusher has applied
it, until a newer applied write of the same key supersedes it, or until it is moved to the dead
letters with its error; the flusher dying (``kill -9``) at any point loses nothing, its leased
entries are claimed again after ``claim_idle``. What the journal's own storage can lose:

**SQLite** (``SqliteJournal``): nothing acknowledged is lost unless the disk itself is lost.
Each append commits with ``synchronous=FULL`` in WAL mode, so the row has been fsynced when
``append`` returns; a crash of the process or of the machine loses nothing. Lost with the file:
a failed disk, a deleted file, an ephemeral container filesystem; and storage that acknowledges
fsync before the data is safe (some consumer drives with volatile write caches, network
filesystems: keep the journal on a local filesystem, which WAL requires anyway). The journal is
per machine: processes on that machine share it, other machines cannot see it.

**Redis** (``RedisStreamJournal``), checked when the journal is built (Redis 7.0: no WAITAOF):

- ``appendonly yes`` with ``appendfsync always``: accepted as durable. Redis fsyncs the AOF
  before it replies, so a crash of Redis or of its machine loses nothing acknowledged; losing
  the disk loses the journal.
- ``wait_replicas=n >= 1``: accepted as durable. After each append ``WAIT n`` confirms that n
  replicas received the entry; fewer confirmations within ``wait_timeout`` raise
  ``StoreError`` instead of acknowledging (the entry may still be applied: an unknown outcome).
  A loss then needs the primary and those replicas to lose it together (all restarted without
  an AOF before a flush), or a failover that promotes a replica which had not received it:
  Redis replication is asynchronous and WAIT does not make it strongly consistent.
- ``appendfsync everysec``: refused unless the loss is accepted. Redis writes the AOF before
  it replies, so a crash of the Redis process loses nothing, but a crash of the machine (power
  loss, kernel panic, a VM stopped) loses the acknowledged writes of the last 1-2 seconds.
- ``appendfsync no``: refused unless accepted. The operating system decides when the AOF
  reaches the disk (typically within 30 seconds): a machine crash loses up to that much.
- ``appendonly no`` (with or without RDB snapshots): refused unless accepted. Every
  acknowledged write not yet flushed to the source is lost when Redis restarts, crashes or is
  killed; a snapshot restores only what existed at the last save.
- ``CONFIG`` disabled (renamed, a managed service): durability cannot be verified, so it is
  treated as not durable: refused unless accepted.

``accept_loss="who accepted it and why"`` turns the refusal into a warning logged once, and
every append made on such a journal is counted (``appends_at_risk`` in the flusher metrics).
The check runs once: a ``CONFIG SET`` that weakens persistence later is not noticed. Entries
removed from the stream by anything but the journal (``XTRIM``, ``XDEL``, ``MAXLEN`` on another
client) are lost; the journal never trims, and a claim that finds such a gap logs it and counts
it (``lost_entries``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from steadycache.write_behind.flusher import Flusher, FlusherMetrics, FlushReport, Writer
from steadycache.write_behind.journal import DeadLetter, Journal
from steadycache.write_behind.records import (
    WriteRecord,
    decode_record,
    decode_value,
    encode_record,
    encode_value,
    record_identity,
)
from steadycache.write_behind.sqlite_journal import SqliteJournal

if TYPE_CHECKING:
    from steadycache.write_behind.redis_journal import RedisStreamJournal

__all__ = [
    "DeadLetter",
    "FlushReport",
    "Flusher",
    "FlusherMetrics",
    "Journal",
    "RedisStreamJournal",
    "SqliteJournal",
    "WriteRecord",
    "Writer",
    "decode_record",
    "decode_value",
    "encode_record",
    "encode_value",
    "record_identity",
]


def __getattr__(name: str) -> Any:
    # redis is an optional extra: import it only when the Redis journal is asked for.
    if name == "RedisStreamJournal":
        try:
            from steadycache.write_behind.redis_journal import RedisStreamJournal
        except ImportError as exc:  # pragma: no cover - exercised by the no-extras test
            raise ImportError(
                "RedisStreamJournal needs the redis extra: pip install 'steadycache[redis]'"
            ) from exc
        return RedisStreamJournal
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
