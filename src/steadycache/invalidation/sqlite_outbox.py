"""SQLite-driven invalidation: triggers write changed keys to an outbox table, a poller routes them.

::

    invalidator = SqliteOutboxInvalidator("app.db", cache)
    invalidator.install()   # outbox table + AFTER INSERT/UPDATE/DELETE triggers, idempotent
    invalidator.start()     # cursor set, polling thread running

SQLite has no notifications, so the triggers insert the key columns of every changed row
(old and new, both when a key column changed) into ``steadycache_outbox`` in the writer's own
transaction: a rolled-back write leaves no row, a committed one always does, whatever code
path made it (ORM, raw SQL, the ``sqlite3`` shell, another process).

Each poller keeps its own cursor (the last outbox id it routed), so several processes each
see every change; nobody deletes a row because they read it. Rows are pruned by age only
(``retention``), and only rows the pruning poller has itself routed. Ids come from
``AUTOINCREMENT`` and SQLite commits one writer at a time, so the ids a poller has not seen
are exactly ``cursor + 1 .. sqlite_sequence``: a missing one means it was pruned (the poller
fell further behind than ``retention``) or deleted, and the poller flushes every namespace it
serves instead. A recreated outbox starts its ids above any earlier one's (at the clock in
microseconds), so running pollers see that as a gap too; a sequence below the cursor (a
sequence reset by hand) is flushed as well.

A new poller starts at the current sequence: older rows concern entries loaded before it
existed. When the cache may already hold entries then (``flush_on_start``, as for
PostgreSQL), it flushes; an empty cache needs nothing.

Not seen: rows that ``INSERT OR REPLACE`` deletes through a UNIQUE constraint other than the
key columns fire no DELETE trigger unless ``PRAGMA recursive_triggers = ON`` (SQLite's rule),
and a BLOB key value is reported as upper-case hex (JSON cannot hold bytes).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from steadycache._core.durations import Duration, to_seconds
from steadycache.errors import ConfigurationError, UsageError
from steadycache.invalidation.router import EventRouter
from steadycache.invalidation.table_changes import (
    NamespaceSource,
    TableChange,
    check_key_columns,
    may_hold_entries,
    resolve_router,
    route_change,
)

logger = logging.getLogger("steadycache")

OUTBOX_TABLE: Final = "steadycache_outbox"
# Unix seconds with a fraction; unixepoch('subsec') needs SQLite 3.42.
_NOW_SQL: Final = "((julianday('now') - 2440587.5) * 86400.0)"
_OPS: Final = ("INSERT", "UPDATE", "DELETE")
# Pruning takes the write lock: do it now and then, not on every poll.
_PRUNE_EVERY_SECONDS: Final = 60.0


@dataclass
class OutboxCounters:
    """What the poller did since it was made."""

    polls: int = 0
    rows: int = 0
    full_invalidations: int = 0
    gaps: int = 0
    pruned: int = 0
    errors: int = 0


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _keys_json(row: str, columns: tuple[str, ...]) -> str:
    """``json_object('id', OLD."id", ...)``; a BLOB (which JSON cannot hold) becomes hex."""
    pairs = []
    for column in columns:
        value = f"{row}.{_quote(column)}"
        pairs.append(
            f"{_literal(column)}, CASE WHEN typeof({value}) = 'blob' THEN hex({value}) "
            f"ELSE {value} END"
        )
    return "json_object(" + ", ".join(pairs) + ")"


def trigger_sql(table: str, columns: tuple[str, ...]) -> dict[str, str]:
    """Trigger name -> ``CREATE TRIGGER`` statement, for the three row events of ``table``."""
    keys = {"OLD": _keys_json("OLD", columns), "NEW": _keys_json("NEW", columns)}
    unchanged = " AND ".join(f"OLD.{_quote(c)} IS NEW.{_quote(c)}" for c in columns)
    rows = {
        "INSERT": f"json_array({keys['NEW']})",
        "DELETE": f"json_array({keys['OLD']})",
        # Both keys when a key column moved: the old entry is stale, the new may be a cached miss.
        "UPDATE": f"CASE WHEN {unchanged} THEN json_array({keys['OLD']}) "
        f"ELSE json_array({keys['OLD']}, {keys['NEW']}) END",
    }
    statements = {}
    for op in _OPS:
        name = f"steadycache_{table}_{op.lower()}"
        statements[name] = (
            f"CREATE TRIGGER {_quote(name)} AFTER {op} ON {_quote(table)} FOR EACH ROW BEGIN "
            f"INSERT INTO {OUTBOX_TABLE}(tbl, op, keys) "
            f"VALUES ({_literal(table)}, {_literal(op)}, {rows[op]}); END"
        )
    return statements


class SqliteOutboxInvalidator:
    """Installs the outbox and its triggers, and polls it to invalidate what changed.

    ``router`` is an ``EventRouter`` or a ``Cache`` (its namespaces at construction are
    routed). ``retention``: how old an outbox row gets before pruning; a poller that falls
    further behind flushes everything. ``flush_on_start``: None flushes when a namespace may
    hold entries when polling starts, True always, False never.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        router: EventRouter | NamespaceSource,
        *,
        poll_interval: Duration = 0.2,
        retention: Duration = 3600,
        busy_timeout: Duration = 5,
        batch_size: int = 1000,
        flush_on_start: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if str(path) == ":memory:" or str(path) == "":
            raise ConfigurationError(
                "invalidation",
                "an outbox needs a database file: writers and the poller use separate "
                "connections, and each in-memory database is private to its connection",
            )
        if batch_size < 1:
            raise ConfigurationError(
                "invalidation", f"batch_size must be 1 or more, got {batch_size}"
            )
        self.router = resolve_router(router)
        for table in self.router.tables:
            if "." in table:
                # A SQLite trigger may only write to tables of its own database file.
                raise ConfigurationError(
                    "invalidation",
                    f"OnTableChange table {table!r}: the SQLite outbox supports tables of the "
                    "main database only (no schema prefix)",
                )
        self.counters = OutboxCounters()
        self._path = os.fspath(path)
        self._poll_interval = to_seconds(
            poll_interval, decision="invalidation", what="poll_interval"
        )
        self._retention = to_seconds(retention, decision="invalidation", what="retention")
        self._busy_timeout = to_seconds(busy_timeout, decision="invalidation", what="busy_timeout")
        self._batch_size = batch_size
        self._flush_on_start = flush_on_start
        self._clock = clock
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._cursor: int | None = None
        self._next_prune = float("-inf")
        self._failing = False
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def cursor(self) -> int | None:
        """The last outbox id this poller has routed (None before it started)."""
        return self._cursor

    # --- schema ---------------------------------------------------------------------------

    def install(self) -> None:
        """Create the outbox and (re)create each declared table's triggers, in one transaction.

        Raises ``ConfigurationError`` for a table or key column the database lacks.
        """
        conn = self._open()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                created = not self._outbox_exists(conn)
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {OUTBOX_TABLE} ("
                    "id INTEGER PRIMARY KEY AUTOINCREMENT, "
                    "tbl TEXT NOT NULL, op TEXT NOT NULL, "
                    "keys TEXT NOT NULL, "  # JSON array of key-column objects
                    f"at REAL NOT NULL DEFAULT {_NOW_SQL})"
                )
                conn.execute(f"CREATE INDEX IF NOT EXISTS {OUTBOX_TABLE}_at ON {OUTBOX_TABLE}(at)")
                if created:
                    # A recreated outbox would count from 1 again, under the cursors of running
                    # pollers, which would then skip its first rows. Starting at the clock in
                    # microseconds puts its ids above any earlier outbox's, so they see a gap.
                    conn.execute(
                        "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)",
                        (OUTBOX_TABLE, time.time_ns() // 1000),
                    )
                for table, columns in self.router.tables.items():
                    self._check_columns(conn, table, columns)
                    for name, statement in trigger_sql(table, columns).items():
                        # Drop first: the key columns may have changed since the last install.
                        conn.execute(f"DROP TRIGGER IF EXISTS {_quote(name)}")
                        conn.execute(statement)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()
        logger.info(
            "SQLite outbox invalidation installed on %s", ", ".join(sorted(self.router.tables))
        )

    def uninstall(self, *, drop_outbox: bool = True) -> None:
        """Drop the declared tables' triggers and, unless told not to, the outbox itself."""
        conn = self._open()
        try:
            conn.execute("BEGIN IMMEDIATE")
            for table, columns in self.router.tables.items():
                for name in trigger_sql(table, columns):
                    conn.execute(f"DROP TRIGGER IF EXISTS {_quote(name)}")
            if drop_outbox:
                conn.execute(f"DROP TABLE IF EXISTS {OUTBOX_TABLE}")
            conn.execute("COMMIT")
        finally:
            conn.close()

    @staticmethod
    def _check_columns(conn: sqlite3.Connection, table: str, columns: tuple[str, ...]) -> None:
        # PRAGMA table_info lists no column for a table that does not exist.
        present = [row[1] for row in conn.execute(f"PRAGMA table_info({_quote(table)})")]
        check_key_columns(table, present or None, columns)

    # --- polling --------------------------------------------------------------------------

    def start(self) -> None:
        """Set the cursor (flushing if owed) and start the polling thread; no-op when running.

        Every change committed after ``start()`` returns will be routed.
        """
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._cursor is None:
                self._initialize(self._connection())
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, name="steadycache-sqlite-outbox", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the polling thread and close the connection; the cursor is kept."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("SQLite outbox poller did not stop within %ss", timeout)
        with self._lock:
            self._close()

    def __enter__(self) -> SqliteOutboxInvalidator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def poll_once(self) -> int:
        """Route the outbox rows committed since the last poll; how many.

        The first call only sets the cursor (like ``start``). Raises what the database
        raises, or what a failed invalidation raises; the cursor then stays before the row
        that failed, so the next poll retries it and nothing is skipped.
        """
        with self._lock:
            try:
                conn = self._connection()
                if self._cursor is None:
                    self._initialize(conn)
                    return 0
                routed = self._drain(conn)
                self._prune_if_due(conn)
                return routed
            except sqlite3.Error:
                self._close()  # a fresh connection next time
                raise

    def _run(self) -> None:
        while not self._stopping.wait(self._poll_interval):
            try:
                self.poll_once()
            except Exception as exc:  # keep polling: the rows wait in the outbox
                self.counters.errors += 1
                if not self._failing:
                    logger.warning("SQLite outbox poll failed (%s); retrying", exc)
                self._failing = True
                continue
            if self._failing:
                logger.warning("SQLite outbox polling recovered")
                self._failing = False

    def _initialize(self, conn: sqlite3.Connection) -> None:
        if not self._outbox_exists(conn):
            raise UsageError(
                f"{self._path} has no {OUTBOX_TABLE}: call SqliteOutboxInvalidator.install() first"
            )
        sequence = self._sequence(conn)
        if self._flush_on_start or (self._flush_on_start is None and may_hold_entries(self.router)):
            self._invalidate_everything(
                "outbox poller started while the cache may hold entries loaded before it"
            )
        # Only once the flush (if owed) happened: a failed flush leaves the poller unstarted.
        self._cursor = sequence

    def _drain(self, conn: sqlite3.Connection) -> int:
        routed = 0
        while True:
            assert self._cursor is not None
            cursor = self._cursor
            # One read transaction: the sequence and the rows come from the same snapshot.
            conn.execute("BEGIN")
            try:
                sequence = self._sequence(conn)
                rows = conn.execute(
                    f"SELECT id, tbl, op, keys FROM {OUTBOX_TABLE} "
                    "WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
                    (cursor, sequence, self._batch_size),
                ).fetchall()
            finally:
                conn.execute("COMMIT")
            self.counters.polls += 1
            if sequence < cursor:
                self._missed(sequence, f"outbox recreated (sequence {sequence} < cursor {cursor})")
                return routed
            if [row[0] for row in rows] != list(range(cursor + 1, cursor + 1 + len(rows))) or (
                len(rows) < self._batch_size and cursor + len(rows) != sequence
            ):
                self._missed(sequence, f"outbox rows after id {cursor} were pruned or deleted")
                return routed
            for row_id, table, op, keys in rows:
                self._route(table, op, keys)
                self._cursor = row_id
                routed += 1
                self.counters.rows += 1
            if len(rows) < self._batch_size:
                return routed

    def _route(self, table: object, op: object, keys: object) -> None:
        try:
            rows = json.loads(keys) if isinstance(keys, str) else None
            if (
                not isinstance(table, str)
                or not isinstance(rows, list)
                or not all(isinstance(row, dict) for row in rows)
            ):
                raise ValueError(f"{table!r}, {op!r}, {keys!r}")
        except ValueError as exc:
            self.counters.errors += 1
            logger.error("unreadable outbox row (%.200s); invalidating everything", exc)
            self._invalidate_everything("unreadable outbox row")
            return
        change = TableChange(table, str(op), tuple(rows))
        try:
            route_change(self.router, change)
        except Exception:
            self.counters.errors += 1
            logger.exception("applying %s of table %s failed", op, table)
            # The change was not applied: flushing is the only way not to serve what it staled.
            self._invalidate_everything(f"failed to apply a change of table {table}")

    def _missed(self, sequence: int, reason: str) -> None:
        self.counters.gaps += 1
        self._invalidate_everything(reason)
        # Everything up to the sequence was committed before the flush: all of it is covered.
        self._cursor = sequence

    def _prune_if_due(self, conn: sqlite3.Connection) -> None:
        now = self._clock()
        if now < self._next_prune or self._cursor is None:
            return
        self._next_prune = now + min(_PRUNE_EVERY_SECONDS, self._retention)
        # Only rows this poller routed: never pull a row from under itself; peers that lag
        # past the retention see the gap and flush.
        deleted = conn.execute(
            f"DELETE FROM {OUTBOX_TABLE} WHERE id <= ? AND at < {_NOW_SQL} - ?",
            (self._cursor, self._retention),
        ).rowcount
        self.counters.pruned += max(deleted, 0)

    def _invalidate_everything(self, reason: str) -> None:
        self.router.invalidate_everything(reason)
        self.counters.full_invalidations += 1
        logger.warning("every namespace with table triggers invalidated: %s", reason)

    @staticmethod
    def _outbox_exists(conn: sqlite3.Connection) -> bool:
        row = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (OUTBOX_TABLE,)
        ).fetchone()
        return row is not None

    @staticmethod
    def _sequence(conn: sqlite3.Connection) -> int:
        """The highest outbox id ever given (AUTOINCREMENT never gives one twice)."""
        row = conn.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = ?", (OUTBOX_TABLE,)
        ).fetchone()
        return int(row[0]) if row is not None else 0

    def _open(self) -> sqlite3.Connection:
        # Autocommit mode: transactions are the explicit BEGIN/COMMIT above.
        return sqlite3.connect(
            self._path,
            timeout=self._busy_timeout,
            isolation_level=None,
            check_same_thread=False,  # guarded by self._lock
        )

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
