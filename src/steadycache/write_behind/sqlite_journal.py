"""The embedded journal: a SQLite file, fsynced before a write is acknowledged.

``journal`` holds one row per acknowledged write; ``dead_letters`` holds the writes that kept
failing. A claim is a lease (``claimed_by`` / ``claimed_until``) taken under ``BEGIN
IMMEDIATE``, so several processes on the machine may share the file: one claims at a time and
an expired lease (a killed flusher) is simply claimed again. Which rows of a key a claim takes
is decided for the key as a whole (``ordering``), inside that transaction. ``AUTOINCREMENT``
matters: plain rowids are reused after the newest row is deleted, which would give a later
write a smaller sequence than one already applied, and "newer wins" writers would then drop it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import replace
from typing import Any, Final

from steadycache.errors import ConfigurationError, GarbledEntryError, StoreError
from steadycache.write_behind.journal import DeadLetter
from steadycache.write_behind.ordering import EntryState, claimable
from steadycache.write_behind.records import (
    WriteRecord,
    decode_record,
    encode_record,
    new_record,
    record_identity,
)

__all__ = ["SqliteJournal"]

logger = logging.getLogger("steadycache")

SCHEMA_VERSION: Final = 1

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    identity TEXT NOT NULL,
    record TEXT NOT NULL,
    enqueued_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    claimed_by TEXT,
    claimed_until REAL,
    not_before REAL NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS journal_identity ON journal (identity, id);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    record TEXT NOT NULL,
    enqueued_at REAL NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT NOT NULL,
    dead_at REAL NOT NULL
);
"""


def _sequence(row_id: int) -> str:
    return f"{row_id:020d}"


class SqliteJournal:
    """A write-behind journal in one SQLite file (WAL, ``synchronous=FULL``)."""

    durable: bool = True
    durability: str = "sqlite synchronous=FULL: fsynced before append returns"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 10.0,
    ) -> None:
        self.path = os.fspath(path)
        self._clock = clock
        self._lock = threading.Lock()
        self.appends_at_risk = 0
        self.undecodable = 0
        try:
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the write-behind journal {self.path!r}: {exc}") from exc
        try:
            self._configure(busy_timeout)
        except BaseException:
            self._db.close()
            raise

    def _configure(self, busy_timeout: float) -> None:
        try:
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            # FULL: in WAL mode every commit fsyncs the log, so append returns after the disk
            # has the row. NORMAL would only sync at checkpoints and lose the tail on power loss.
            self._db.execute("PRAGMA synchronous=FULL")
            # macOS: fsync() does not reach the platter; F_FULLFSYNC does. A no-op elsewhere.
            self._db.execute("PRAGMA fullfsync=ON")
            self._db.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            with self._transaction() as db:
                # Statement by statement: executescript() would COMMIT this transaction.
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version not in (0, SCHEMA_VERSION):
                    raise ConfigurationError(
                        "pattern",
                        f"write-behind journal {self.path!r} has schema version {version}; "
                        f"this steadycache reads version {SCHEMA_VERSION}",
                    )
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the write-behind journal {self.path!r}: {exc}") from exc
        if str(mode).lower() != "wal":
            # ":memory:" and some filesystems cannot do WAL; neither is a durable journal.
            raise ConfigurationError(
                "pattern",
                f"write-behind journal {self.path!r} cannot use WAL (journal_mode={mode}); "
                "use a file on a local filesystem",
            )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: the write lock first, so claims never race."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                    self._db.execute("COMMIT")
                except BaseException:
                    # A failed COMMIT can leave the transaction open; never leak it into the
                    # next call, which would then commit half of this one.
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"write-behind journal {self.path!r} failed: {exc}") from exc

    def _read(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, parameters).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"write-behind journal {self.path!r} failed: {exc}") from exc

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
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO journal (identity, record, enqueued_at) VALUES (?, ?, ?)",
                (record_identity(record), text, record.enqueued_at),
            )
            row_id = cursor.lastrowid
        # COMMIT returned under synchronous=FULL: the row is on disk, the write acknowledged.
        assert row_id is not None
        return replace(record, sequence=_sequence(row_id))

    def claim(self, consumer: str, count: int, min_idle: float) -> list[WriteRecord]:
        if count <= 0:
            return []
        now = self._clock()
        with self._transaction() as db:
            chosen = sorted(self._choose(db, now, count))
            rows = [
                db.execute(
                    "SELECT id, record, attempts, claimed_by FROM journal WHERE id = ?", (row_id,)
                ).fetchone()
                for row_id in chosen
            ]
            db.executemany(
                "UPDATE journal SET claimed_by = ?, claimed_until = ?, attempts = attempts + 1"
                " WHERE id = ?",
                [(consumer, now + min_idle, row_id) for row_id in chosen],
            )
        records: list[WriteRecord] = []
        for row_id, text, attempts, claimed_by in rows:
            try:
                records.append(
                    decode_record(
                        text,
                        sequence=_sequence(row_id),
                        attempts=attempts + 1,
                        # Someone held a lease that lapsed: that flusher died or hung.
                        recovered=claimed_by is not None,
                    )
                )
            except GarbledEntryError as exc:
                # Left leased, not deleted: a newer flusher may read a newer format.
                self.undecodable += 1
                logger.error(
                    "write-behind: journal row %d unreadable, left in place: %s", row_id, exc
                )
        return records

    def _choose(self, db: sqlite3.Connection, now: float, count: int) -> list[int]:
        """Row ids to hand out, decided key by key (see ``ordering``), oldest row first."""
        chosen: list[int] = []
        decided: set[str] = set()
        # Each row that could go on its own names a key; the key is then decided as a whole.
        # Closed on leaving, not left half-read: the UPDATE and COMMIT of this claim follow.
        with closing(
            db.execute(
                "SELECT identity FROM journal WHERE not_before <= ?"
                " AND (claimed_by IS NULL OR claimed_until <= ?) ORDER BY id",
                (now, now),
            )
        ) as candidates:
            for (identity,) in candidates:
                if identity in decided:
                    continue
                decided.add(identity)
                rows = db.execute(
                    "SELECT id, attempts, claimed_by IS NOT NULL AND claimed_until > ?,"
                    " not_before FROM journal WHERE identity = ? ORDER BY id",
                    (now, identity),
                ).fetchall()
                states = [
                    EntryState(
                        delivered=attempts > 0,
                        leased=bool(leased),
                        due=not leased and not_before <= now,
                    )
                    for _, attempts, leased, not_before in rows
                ]
                picked = claimable(states, count - len(chosen))
                chosen += [rows[position][0] for position in picked]
                if len(chosen) >= count:
                    break
        return chosen

    def complete(self, applied: WriteRecord, superseded: Sequence[WriteRecord] = ()) -> int:
        applied_id = int(applied.sequence)
        with self._transaction() as db:
            # Every older row of the key goes with it, even one waiting for a retry or leased
            # to another flusher: applying it now would put an older value over this one.
            removed = {
                row[0]
                for row in db.execute(
                    "DELETE FROM journal WHERE identity = ? AND id <= ? RETURNING id",
                    (record_identity(applied), applied_id),
                ).fetchall()
            }
            for record in superseded:
                cursor = db.execute("DELETE FROM journal WHERE id = ?", (int(record.sequence),))
                if cursor.rowcount:
                    removed.add(int(record.sequence))
        return len(removed - {applied_id})

    def ack(self, records: Sequence[WriteRecord]) -> None:
        if not records:
            return
        with self._transaction() as db:
            db.executemany(
                "DELETE FROM journal WHERE id = ?", [(int(r.sequence),) for r in records]
            )

    def retry_later(self, record: WriteRecord, delay: float, error: str) -> bool:
        with self._transaction() as db:
            # attempts = this delivery's number: if another flusher claimed the row since, the
            # row is theirs now and this stale rescheduling must not release their lease.
            cursor = db.execute(
                "UPDATE journal SET claimed_by = NULL, claimed_until = NULL,"
                " not_before = ?, last_error = ? WHERE id = ? AND attempts = ?",
                (self._clock() + delay, error, int(record.sequence), record.attempts),
            )
            return cursor.rowcount == 1

    def dead_letter(self, record: WriteRecord, error: str) -> bool:
        row_id = int(record.sequence)
        with self._transaction() as db:
            row = db.execute(
                "SELECT record, enqueued_at, attempts FROM journal WHERE id = ? AND attempts = ?",
                (row_id, record.attempts),
            ).fetchone()
            if row is None:
                return False
            db.execute(
                "INSERT INTO dead_letters (id, record, enqueued_at, attempts, error, dead_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (row_id, row[0], row[1], row[2], error, self._clock()),
            )
            db.execute("DELETE FROM journal WHERE id = ?", (row_id,))
            return True

    def depth(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM journal")[0][0])

    def lag(self) -> float:
        oldest = self._read("SELECT MIN(enqueued_at) FROM journal")[0][0]
        return 0.0 if oldest is None else max(0.0, self._clock() - float(oldest))

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        letters: list[DeadLetter] = []
        for row_id, text, attempts, error in self._read(
            "SELECT id, record, attempts, error FROM dead_letters ORDER BY id LIMIT ?", (limit,)
        ):
            try:
                record = decode_record(text, sequence=_sequence(row_id), attempts=attempts)
            except GarbledEntryError as exc:
                logger.error("write-behind: dead letter %d unreadable: %s", row_id, exc)
                continue
            letters.append(DeadLetter(record, error))
        return letters

    def close(self) -> None:
        with self._lock:
            self._db.close()
