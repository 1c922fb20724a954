"""PostgreSQL-driven invalidation: triggers ``NOTIFY`` the changed keys, a listener routes them.

::

    invalidator = PostgresInvalidator("postgresql://app@db/app", cache)
    invalidator.install()          # once per deploy: trigger function + triggers, idempotent
    invalidator.start()            # listener thread
    invalidator.wait_ready(5)      # LISTEN is active: no later commit goes unseen

Every write path is covered (ORM, raw SQL, ``psql``, another service, a migration), because
the triggers run inside the database. Each row trigger sends the key columns of the old and
the new row (both when a key column changed) and ``TRUNCATE`` sends a whole-table change;
the listener turns them into ``table:<table>`` events for the ``EventRouter``.

Why this is correct, and where it is not:

- PostgreSQL delivers a notification only when the notifying transaction commits, and in
  commit order, so a rolled-back write invalidates nothing and a listener never hears of a
  change before other sessions can read it.
- Notifications sent while no listener is connected are lost. So after every reconnection the
  listener flushes every namespace it serves (``reconnects``, ``full_invalidations``). It issues
  ``LISTEN`` before flushing, so a change is either notified or older than the flush.
- The first connection flushes too when the cache may already hold entries loaded before
  ``LISTEN`` (``flush_on_start``); an empty cache needs no flush.
- A payload must stay under 8000 bytes: the triggers send key columns only, and a row whose
  keys alone are too long is reported as a whole-table change.
- A notification the listener cannot read, or cannot apply, flushes everything: a missed
  invalidation is the worse failure.
- Not seen: writes made with ``session_replication_role = replica`` (logical replication
  apply, ``pg_restore --disable-triggers``), which fire no ordinary trigger.

Needs the ``postgres`` extra (psycopg 3), imported only when the invalidator is used.
"""

from __future__ import annotations

import logging
import random as random_module
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from steadycache._core.durations import Duration, to_seconds
from steadycache.errors import ConfigurationError
from steadycache.invalidation.router import EventRouter
from steadycache.invalidation.table_changes import (
    NamespaceSource,
    TableChange,
    check_key_columns,
    may_hold_entries,
    resolve_router,
    route_change,
)

if TYPE_CHECKING:
    import psycopg

logger = logging.getLogger("steadycache")

RECONNECT_REASON: Final = "listener reconnected: notifications may have been missed"
START_REASON: Final = "invalidator started while the cache may hold entries loaded before it"

FUNCTION_NAME: Final = "steadycache_notify_change"  # as written in _FUNCTION_SQL
# NOTIFY refuses a payload of 8000 bytes or more (the server's default build); the trigger
# reports a row whose keys alone reach it as a whole-table change.
PAYLOAD_LIMIT: Final = 8000
# Trigger names are "<channel>_row" / "<channel>_truncate"; PostgreSQL names hold 63 bytes.
_CHANNEL_MAX_BYTES: Final = 63 - len("_truncate")
# Serialises concurrent install()/uninstall() runs: two CREATE OR REPLACE FUNCTION racing
# fail with "tuple concurrently updated". Any fixed bigint works; this one spells "stdycach".
_INSTALL_LOCK_ID: Final = 0x7374647963616368
# A half-open TCP connection never raises while we only wait for notifications: keepalives
# find a dead peer within about idle + interval * count seconds, a periodic query in any case.
_KEEPALIVES: Final = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}
_HEALTH_CHECK_SECONDS: Final = 30.0

# TG_ARGV: channel, the table's declared name (what the router knows it as), key columns...
# Written out rather than formatted: the body's JSON braces would read as placeholders.
_FUNCTION_SQL: Final = """
CREATE OR REPLACE FUNCTION steadycache_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $steadycache$
DECLARE
    old_row jsonb;
    new_row jsonb;
    old_keys jsonb := '{}';
    new_keys jsonb := '{}';
    changed jsonb := '[]';
    payload text;
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN
        -- TRUNCATE names no rows: the whole table changed.
        PERFORM pg_notify(TG_ARGV[0], jsonb_build_object('table', TG_ARGV[1], 'op', TG_OP)::text);
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN old_row := to_jsonb(OLD); END IF;
    IF TG_OP <> 'DELETE' THEN new_row := to_jsonb(NEW); END IF;
    FOR i IN 2 .. TG_NARGS - 1 LOOP
        old_keys := old_keys || jsonb_build_object(TG_ARGV[i], old_row -> TG_ARGV[i]);
        new_keys := new_keys || jsonb_build_object(TG_ARGV[i], new_row -> TG_ARGV[i]);
    END LOOP;
    IF old_row IS NOT NULL THEN
        changed := changed || jsonb_build_array(old_keys);
    END IF;
    -- An INSERT may replace a cached "not found"; an UPDATE that moved a key frees the new one.
    IF new_row IS NOT NULL AND (old_row IS NULL OR new_keys <> old_keys) THEN
        changed := changed || jsonb_build_array(new_keys);
    END IF;
    payload := jsonb_build_object('table', TG_ARGV[1], 'op', TG_OP, 'rows', changed)::text;
    IF octet_length(payload) >= 8000 THEN  -- NOTIFY's limit
        payload := jsonb_build_object('table', TG_ARGV[1], 'op', TG_OP, 'overflow', true)::text;
    END IF;
    PERFORM pg_notify(TG_ARGV[0], payload);
    RETURN NULL;
END
$steadycache$
"""


def reconnect_delay(
    attempt: int, base: float, cap: float, random: Callable[[], float] = random_module.random
) -> float:
    """Exponential backoff with jitter: between half and all of ``min(cap, base * 2**attempt)``.

    The jitter keeps a fleet of listeners from reconnecting in lockstep after a restart.
    """
    ceiling = min(cap, base * 2.0 ** min(attempt, 32))
    return ceiling / 2 + random() * ceiling / 2


# --- PostgreSQL ------------------------------------------------------------------------------


def _require_psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise ConfigurationError(
            "invalidation",
            "PostgreSQL invalidation needs the extra: pip install 'steadycache[postgres]'",
        ) from exc
    return psycopg


@dataclass
class PostgresCounters:
    """What the listener did since it was made."""

    notifications: int = 0
    reconnects: int = 0
    full_invalidations: int = 0
    table_flushes: int = 0
    errors: int = 0


class PostgresInvalidator:
    """Installs change-notifying triggers and runs the listener that invalidates what changed.

    ``router`` is an ``EventRouter`` or a ``Cache`` (its namespaces at construction are
    routed). ``flush_on_start``: None flushes on the first connection only when a namespace
    may hold entries; True always; False never (the entries are known to be current, e.g.
    a shared tier other listeners kept invalidated). Reconnections always flush.
    """

    def __init__(
        self,
        dsn: str,
        router: EventRouter | NamespaceSource,
        *,
        channel: str = "steadycache_invalidation",
        reconnect_backoff: Duration = 0.1,
        max_reconnect_backoff: Duration = 5.0,
        poll_timeout: Duration = 0.5,
        connect_timeout: Duration = 5,
        flush_on_start: bool | None = None,
        application_name: str = "steadycache-invalidation",
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = random_module.random,
    ) -> None:
        if not channel or len(channel.encode()) > _CHANNEL_MAX_BYTES:
            raise ConfigurationError(
                "invalidation",
                f"channel must be 1 to {_CHANNEL_MAX_BYTES} bytes (it names the triggers too), "
                f"got {channel!r}",
            )
        _require_psycopg()  # a missing extra fails here, not later in the listener thread
        self.router = resolve_router(router)
        self.channel = channel
        self.counters = PostgresCounters()
        self._dsn = dsn
        self._backoff = to_seconds(
            reconnect_backoff, decision="invalidation", what="reconnect_backoff"
        )
        self._max_backoff = to_seconds(
            max_reconnect_backoff, decision="invalidation", what="max_reconnect_backoff"
        )
        self._poll_timeout = to_seconds(poll_timeout, decision="invalidation", what="poll_timeout")
        # libpq reads connect_timeout as whole seconds and treats 1 as 2.
        self._connect_timeout = max(
            2, round(to_seconds(connect_timeout, decision="invalidation", what="connect_timeout"))
        )
        self._flush_on_start = flush_on_start
        self._application_name = application_name
        self._clock = clock
        self._random = random
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._has_listened = False
        self._attempt = 0

    # --- schema ---------------------------------------------------------------------------

    def install(self) -> None:
        """Create (or replace) the trigger function and each declared table's triggers.

        Raises ``ConfigurationError`` for a table or key column the database lacks; database
        errors propagate as psycopg errors.
        """
        psycopg = _require_psycopg()
        from psycopg import sql

        with (
            psycopg.connect(self._dsn, connect_timeout=self._connect_timeout) as conn,
            conn.transaction(),
        ):
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_INSTALL_LOCK_ID,))
            conn.execute(_FUNCTION_SQL)
            # CREATE OR REPLACE TRIGGER exists from PostgreSQL 14; before, drop and create
            # (in this transaction, so no write ever runs without the trigger).
            replace = conn.info.server_version >= 140000
            for table, columns in self.router.tables.items():
                self._check_columns(conn, table, columns)
                for name, events, level, args in self._trigger_specs(table, columns):
                    if not replace:
                        conn.execute(
                            sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
                                sql.Identifier(name), _table_identifier(table)
                            )
                        )
                    create = "CREATE OR REPLACE TRIGGER" if replace else "CREATE TRIGGER"
                    conn.execute(
                        sql.SQL(
                            f"{create} {{}} AFTER {events} ON {{}} FOR EACH {level} "
                            "EXECUTE FUNCTION {}({})"
                        ).format(
                            sql.Identifier(name),
                            _table_identifier(table),
                            sql.Identifier(FUNCTION_NAME),
                            sql.SQL(", ").join(sql.Literal(arg) for arg in args),
                        )
                    )
        logger.info(
            "PostgreSQL invalidation installed on %s (channel %s)",
            ", ".join(sorted(self.router.tables)),
            self.channel,
        )

    def uninstall(self) -> None:
        """Drop this channel's triggers, and the function once no trigger uses it."""
        psycopg = _require_psycopg()
        from psycopg import errors, sql

        with (
            psycopg.connect(self._dsn, connect_timeout=self._connect_timeout) as conn,
            conn.transaction(),
        ):
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_INSTALL_LOCK_ID,))
            for table in self.router.tables:
                if _table_oid(conn, table) is None:
                    continue
                for name, *_ in self._trigger_specs(table, ()):
                    conn.execute(
                        sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
                            sql.Identifier(name), _table_identifier(table)
                        )
                    )
            try:
                with conn.transaction():  # a savepoint: other channels may still use it
                    conn.execute(
                        sql.SQL("DROP FUNCTION IF EXISTS {}()").format(
                            sql.Identifier(FUNCTION_NAME)
                        )
                    )
            except errors.DependentObjectsStillExist:
                logger.info("trigger function kept: other channels' triggers use it")

    def _trigger_specs(
        self, table: str, columns: tuple[str, ...]
    ) -> tuple[tuple[str, str, str, tuple[str, ...]], ...]:
        """(name, events, level, arguments) of the two triggers this channel puts on ``table``."""
        return (
            (
                f"{self.channel}_row",
                "INSERT OR UPDATE OR DELETE",
                "ROW",
                (self.channel, table, *columns),
            ),
            (f"{self.channel}_truncate", "TRUNCATE", "STATEMENT", (self.channel, table)),
        )

    @staticmethod
    def _check_columns(conn: psycopg.Connection[Any], table: str, columns: tuple[str, ...]) -> None:
        oid = _table_oid(conn, table)
        present = None
        if oid is not None:
            rows = conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0 "
                "AND NOT attisdropped",
                (oid,),
            ).fetchall()
            present = [row[0] for row in rows]
        check_key_columns(table, present, columns)

    # --- listener -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the listener thread (no-op when running). ``wait_ready`` waits for LISTEN."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._ready.clear()
        self._thread = threading.Thread(
            target=self._run, name="steadycache-postgres-invalidation", daemon=True
        )
        self._thread.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the listener is listening (after any flush it owed); whether it is."""
        return self._ready.wait(timeout)

    @property
    def ready(self) -> bool:
        """Whether the listener is connected and listening now."""
        return self._ready.is_set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the listener; returns within about ``poll_timeout``."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("PostgreSQL invalidation listener did not stop within %ss", timeout)
        self._ready.clear()

    def __enter__(self) -> PostgresInvalidator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._listen()
            except Exception as exc:  # any failure: reconnect, then flush
                self._ready.clear()
                if self._stopping.is_set():
                    return
                self.counters.errors += 1
                delay = reconnect_delay(
                    self._attempt, self._backoff, self._max_backoff, self._random
                )
                self._attempt += 1
                logger.warning(
                    "PostgreSQL invalidation listener failed (%s); reconnecting in %.2fs, then "
                    "invalidating every namespace it serves",
                    exc,
                    delay,
                )
                self._stopping.wait(delay)

    def _listen(self) -> None:
        psycopg = _require_psycopg()
        from psycopg import sql

        with psycopg.connect(
            self._dsn,
            autocommit=True,
            application_name=self._application_name,
            connect_timeout=self._connect_timeout,
            **_KEEPALIVES,
        ) as conn:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            self._after_listen()
            last_heard = self._clock()
            while not self._stopping.is_set():
                received = 0
                for notify in conn.notifies(timeout=self._poll_timeout):
                    received += 1
                    self._handle(notify.payload)
                    if self._stopping.is_set():
                        break
                now = self._clock()
                if received:
                    last_heard = now
                elif now - last_heard >= _HEALTH_CHECK_SECONDS:
                    conn.execute("SELECT 1")
                    last_heard = now

    def _after_listen(self) -> None:
        # LISTEN is active: every later commit will be notified, so a flush now covers the rest.
        reason: str | None = None
        if self._has_listened:
            self.counters.reconnects += 1
            reason = RECONNECT_REASON
        elif self._flush_on_start or (
            self._flush_on_start is None and may_hold_entries(self.router)
        ):
            reason = START_REASON
        # Set before flushing: if the flush fails, the next connection owes one in any case.
        self._has_listened = True
        if reason is not None:
            self._invalidate_everything(reason)
        self._attempt = 0
        self._ready.set()
        logger.info("PostgreSQL invalidation listening on channel %s", self.channel)

    def _handle(self, payload: str) -> None:
        self.counters.notifications += 1
        try:
            change = TableChange.from_json(payload)
        except ValueError:
            self.counters.errors += 1
            logger.error(
                "unreadable notification on channel %s: %.200r; invalidating everything",
                self.channel,
                payload,
            )
            self._invalidate_everything("unreadable notification")
            return
        try:
            route_change(self.router, change)
        except Exception:
            self.counters.errors += 1
            logger.exception("applying %s of table %s failed", change.op, change.table)
            # The change was not applied: flushing is the only way not to serve what it staled.
            self._invalidate_everything(f"failed to apply a change of table {change.table}")
            return
        if change.rows is None:
            self.counters.table_flushes += 1

    def _invalidate_everything(self, reason: str) -> None:
        # Raising here drops the connection: the loop reconnects and flushes again.
        self.router.invalidate_everything(reason)
        self.counters.full_invalidations += 1
        logger.warning("every namespace with table triggers invalidated: %s", reason)


def _table_identifier(table: str) -> Any:
    from psycopg import sql

    return sql.Identifier(*table.split("."))


def _table_oid(conn: psycopg.Connection[Any], table: str) -> int | None:
    row = conn.execute(
        "SELECT to_regclass(%s)::oid", (_table_identifier(table).as_string(conn),)
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])
