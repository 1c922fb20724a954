"""PostgreSQL-driven invalidation against a real server: every write path, none calling steadycache.

Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth, database ``test``), as in CI.
An unreachable server fails the module: a skipped invalidation test is a silent gap.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Column, Integer, MetaData, Table, Text, create_engine, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from steadycache import Cache, Invalidation, Namespace, Policy, ReadThrough, Ttl
from steadycache.errors import ConfigurationError
from steadycache.invalidation.postgres import FUNCTION_NAME, PostgresInvalidator, reconnect_delay
from steadycache.invalidation.router import EventRouter
from steadycache.invalidation.table_changes import TableChange
from steadycache.policy import OnTableChange

DSN = "postgresql://postgres@127.0.0.1:5432/test"
SQLALCHEMY_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
WAIT = 5.0
MISSING = "<no such hotel>"


def eventually(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout}s: {what}")
        time.sleep(0.01)


@pytest.fixture(scope="module")
def server() -> None:
    try:
        with psycopg.connect(DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL service at 127.0.0.1:5432 (user postgres, database test) is "
            f"unreachable; these tests need it running: {exc}"
        )


def execute(statement: sql.Composed | str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Run one statement in its own autocommitted connection (a writer unknown to steadycache)."""
    with psycopg.connect(DSN, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def read_name(table: str, hotel_id: int) -> str:
    rows = execute(
        sql.SQL("SELECT name FROM {} WHERE id = %s").format(sql.Identifier(table)), (hotel_id,)
    )
    return str(rows[0][0]) if rows else MISSING


def hotel_policy(table: str, **trigger: Any) -> Policy:
    rule = trigger or {"key_columns": ("id",), "keys": ("{id}",)}
    return Policy(
        pattern=ReadThrough(),
        invalidation=Invalidation(
            ttl=Ttl(3600), owner="hotel-team", triggers=(OnTableChange(table, **rule),)
        ),
    )


class Flaky:
    """A namespace whose next ``failures`` invalidations raise, as a broken shared tier would."""

    def __init__(self, namespace: Namespace, failures: int) -> None:
        self.namespace = namespace
        self.failures = failures

    @property
    def name(self) -> str:
        return self.namespace.name

    @property
    def policy(self) -> Policy:
        return self.namespace.policy

    def _maybe_fail(self) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("shared tier unreachable")

    def invalidate(self, key: Any, *, scope: Mapping[str, object] | None = None) -> bool:
        self._maybe_fail()
        return self.namespace.invalidate(key, scope=scope)

    def invalidate_tag(self, tag: str) -> object:
        self._maybe_fail()
        return self.namespace.invalidate_tag(tag)

    def invalidate_all(self) -> int:
        self._maybe_fail()
        return self.namespace.invalidate_all()


class Setup:
    """A cache whose namespace reads the table, and a running invalidator for it."""

    def __init__(self, table: str, invalidator: PostgresInvalidator, hotels: Namespace) -> None:
        self.table = table
        self.invalidator = invalidator
        self.hotels = hotels

    def load(self, hotel_id: int) -> str:
        return str(self.hotels.get_or_load(hotel_id, lambda: read_name(self.table, hotel_id)))

    def cached(self, hotel_id: int) -> object:
        return self.hotels.get(hotel_id)

    def assert_invalidated(self, hotel_id: int, now_reads: str) -> None:
        eventually(lambda: self.cached(hotel_id) is None, f"hotel {hotel_id} invalidated")
        assert self.load(hotel_id) == now_reads


@contextmanager
def listening(cache: Cache | EventRouter, **options: Any) -> Iterator[PostgresInvalidator]:
    """An installed, ready invalidator on a channel of its own; uninstalled afterwards."""
    options.setdefault("channel", f"sc_{uuid.uuid4().hex[:12]}")
    options.setdefault("poll_timeout", 0.05)
    invalidator = PostgresInvalidator(DSN, cache, **options)
    invalidator.install()
    try:
        invalidator.start()
        assert invalidator.wait_ready(WAIT)
        yield invalidator
    finally:
        invalidator.stop()
        invalidator.uninstall()


@contextmanager
def scratch_table(prefix: str, columns: str, rows: str) -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    table = sql.Identifier(name)
    execute(sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(columns)))
    try:
        execute(sql.SQL("INSERT INTO {} VALUES {}").format(table, sql.SQL(rows)))
        yield name
    finally:
        execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(table))


@pytest.fixture
def table(server: None) -> Iterator[str]:
    rows = ", ".join(f"({i}, 'hotel {i}', 'paris')" for i in range(1, 7))
    with scratch_table(
        "hotels", "id integer PRIMARY KEY, name text NOT NULL, city text", rows
    ) as name:
        yield name


@pytest.fixture
def make_setup(table: str) -> Iterator[Callable[..., Setup]]:
    with ExitStack() as stack:

        def make(**options: Any) -> Setup:
            cache = Cache()
            hotels = cache.namespace("hotels", hotel_policy(table))
            invalidator = stack.enter_context(listening(cache, **options))
            return Setup(table, invalidator, hotels)

        yield make


# --- the five write paths ------------------------------------------------------------------


def raw_psycopg(table: str, hotel_id: int, name: str) -> None:
    with psycopg.connect(DSN) as conn:  # a transaction, committed on exit
        conn.execute(
            sql.SQL("UPDATE {} SET name = %s WHERE id = %s").format(sql.Identifier(table)),
            (name, hotel_id),
        )


def sqlalchemy_orm(table: str, hotel_id: int, name: str) -> None:
    class Base(DeclarativeBase):
        pass

    class Hotel(Base):
        __tablename__ = table
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str]
        city: Mapped[str | None]

    engine = create_engine(SQLALCHEMY_URL)
    try:
        with Session(engine) as session:
            hotel = session.get(Hotel, hotel_id)
            assert hotel is not None
            hotel.name = name
            session.commit()
    finally:
        engine.dispose()


def sqlalchemy_core_bulk(table: str, hotel_ids: list[int], name: str) -> None:
    hotels = Table(table, MetaData(), Column("id", Integer, primary_key=True), Column("name", Text))
    engine = create_engine(SQLALCHEMY_URL)
    try:
        with engine.begin() as conn:
            result = conn.execute(
                update(hotels).where(hotels.c.id.in_(hotel_ids)).values(name=name)
            )
            assert result.rowcount == len(hotel_ids)
    finally:
        engine.dispose()


def shell_or_plpgsql(table: str, hotel_id: int, name: str) -> None:
    statement = f"UPDATE \"{table}\" SET name = '{name}' WHERE id = {hotel_id}"
    psql = shutil.which("psql")
    if psql is not None:
        subprocess.run(
            [psql, DSN, "-v", "ON_ERROR_STOP=1", "-qc", statement],
            check=True,
            capture_output=True,
            timeout=30,
        )
    else:
        plpgsql_block(table, hotel_id, name)


def plpgsql_block(table: str, hotel_id: int, name: str) -> None:
    execute(
        sql.SQL("DO $$ BEGIN UPDATE {} SET name = {} WHERE id = {}; END $$").format(
            sql.Identifier(table), sql.Literal(name), sql.Literal(hotel_id)
        )
    )


def upsert(table: str, hotel_id: int, name: str) -> None:
    execute(
        sql.SQL(
            "INSERT INTO {} (id, name) VALUES (%s, %s) "
            "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name"
        ).format(sql.Identifier(table)),
        (hotel_id, name),
    )


def delete_and_reinsert(table: str, hotel_id: int, name: str) -> None:
    with psycopg.connect(DSN) as conn:
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE id = %s").format(sql.Identifier(table)), (hotel_id,)
        )
        conn.execute(
            sql.SQL("INSERT INTO {} (id, name) VALUES (%s, %s)").format(sql.Identifier(table)),
            (hotel_id, name),
        )


SINGLE_ROW_PATHS = {
    "raw psycopg UPDATE": raw_psycopg,
    "SQLAlchemy ORM": sqlalchemy_orm,
    "psql (or PL/pgSQL when psql is absent)": shell_or_plpgsql,
    "PL/pgSQL DO block": plpgsql_block,
    "INSERT ON CONFLICT DO UPDATE": upsert,
    "DELETE and re-INSERT": delete_and_reinsert,
}


def test_every_write_path_invalidates(make_setup: Callable[..., Setup]) -> None:
    setup = make_setup()
    for number, (path, write) in enumerate(SINGLE_ROW_PATHS.items(), start=1):
        assert setup.load(1) == read_name(setup.table, 1)
        assert setup.cached(1) is not None
        new_name = f"renamed by {number}"
        write(setup.table, 1, new_name)
        assert read_name(setup.table, 1) == new_name, path
        setup.assert_invalidated(1, new_name)

    # Core bulk update: one statement, several rows, each reported.
    for hotel_id in (2, 3, 4):
        setup.load(hotel_id)
    setup.load(5)
    sqlalchemy_core_bulk(setup.table, [2, 3, 4], "bulk")
    for hotel_id in (2, 3, 4):
        setup.assert_invalidated(hotel_id, "bulk")
    assert setup.cached(5) == "hotel 5"  # untouched rows stay cached
    counters = setup.invalidator.counters
    assert (counters.full_invalidations, counters.table_flushes, counters.errors) == (0, 0, 0)


def test_rolled_back_write_invalidates_nothing(make_setup: Callable[..., Setup]) -> None:
    setup = make_setup()
    setup.load(1)
    setup.load(2)
    before = setup.invalidator.counters.notifications
    with psycopg.connect(DSN) as conn:
        conn.execute(
            sql.SQL("UPDATE {} SET name = 'never' WHERE id = 1").format(sql.Identifier(setup.table))
        )
        conn.rollback()
    # Notifications arrive in commit order: once a later commit's arrived, a rolled-back
    # write's would have arrived before it.
    raw_psycopg(setup.table, 2, "later")
    setup.assert_invalidated(2, "later")
    assert setup.invalidator.counters.notifications == before + 1
    assert setup.cached(1) == "hotel 1"


def test_key_column_change_invalidates_old_and_new_key(make_setup: Callable[..., Setup]) -> None:
    setup = make_setup()
    assert setup.load(1) == "hotel 1"
    assert setup.load(100) == MISSING  # a cached "not found"
    execute(sql.SQL("UPDATE {} SET id = 100 WHERE id = 1").format(sql.Identifier(setup.table)))
    setup.assert_invalidated(1, MISSING)
    setup.assert_invalidated(100, "hotel 1")


def test_insert_invalidates_a_cached_miss(make_setup: Callable[..., Setup]) -> None:
    setup = make_setup()
    assert setup.load(50) == MISSING
    execute(
        sql.SQL("INSERT INTO {} (id, name) VALUES (50, 'new')").format(sql.Identifier(setup.table))
    )
    setup.assert_invalidated(50, "new")


def test_truncate_flushes_the_tables_namespaces(make_setup: Callable[..., Setup]) -> None:
    setup = make_setup()
    for hotel_id in (1, 2, 3):
        setup.load(hotel_id)
    execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(setup.table)))
    for hotel_id in (1, 2, 3):
        setup.assert_invalidated(hotel_id, MISSING)
    assert setup.invalidator.counters.table_flushes == 1


def test_keys_too_long_for_a_notification_flush_the_table(server: None) -> None:
    with scratch_table("slugs", "slug text PRIMARY KEY, title text", "('a', 'x')") as table:
        cache = Cache()
        pages = cache.namespace(
            "pages", hotel_policy(table, key_columns=("slug",), keys=("{slug}",))
        )
        with listening(cache) as invalidator:
            pages.set("short", "cached")
            long_slug = "x" * 9000  # over NOTIFY's 8000-byte payload limit by itself
            # The write must succeed (a NOTIFY error would abort the writer's transaction).
            execute(
                sql.SQL("INSERT INTO {} VALUES (%s, 'long'), ('other', 'x')").format(
                    sql.Identifier(table)
                ),
                (long_slug,),
            )
            eventually(lambda: pages.get("short") is None, "whole-table flush")
            assert invalidator.counters.table_flushes == 1
            assert invalidator.counters.errors == 0


def test_tags_and_composite_keys(server: None) -> None:
    with scratch_table(
        "rooms",
        "hotel_id int, number int, price int, PRIMARY KEY (hotel_id, number)",
        "(1, 101, 90), (1, 102, 80), (2, 201, 70)",
    ) as table:
        cache = Cache()
        rooms = cache.namespace(
            "rooms",
            hotel_policy(
                table,
                key_columns=("hotel_id", "number"),
                keys=("{hotel_id}:{number}",),
                tags=("hotel:{hotel_id}",),
            ),
        )
        with listening(cache):
            rooms.set("1:101", 90)
            rooms.set(("cheapest", 1), 80, tags=("hotel:1",))
            rooms.set(("cheapest", 2), 70, tags=("hotel:2",))
            execute(
                sql.SQL("UPDATE {} SET price = 60 WHERE hotel_id = 1 AND number = 101").format(
                    sql.Identifier(table)
                )
            )
            eventually(lambda: rooms.get(("cheapest", 1)) is None, "tag hotel:1 invalidated")
            assert rooms.get("1:101") is None
            assert rooms.get(("cheapest", 2)) == 70


# --- connection loss -----------------------------------------------------------------------


def test_reconnects_and_flushes_after_losing_the_connection(
    make_setup: Callable[..., Setup],
) -> None:
    application_name = f"sc-test-{uuid.uuid4().hex[:8]}"
    setup = make_setup(application_name=application_name, reconnect_backoff=0.05)
    assert setup.invalidator.counters.full_invalidations == 0  # empty cache at start: no flush
    setup.load(1)
    setup.load(2)
    killed = execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
        (application_name,),
    )
    assert killed == [(True,)]
    counters = setup.invalidator.counters
    eventually(lambda: counters.reconnects == 1 and setup.invalidator.ready, "reconnected")
    assert counters.full_invalidations == 1
    assert counters.errors >= 1
    # Nothing of the namespace survives the reconnection: changes may have been missed.
    assert setup.cached(1) is None
    assert setup.cached(2) is None
    # And the new connection hears changes again.
    setup.load(3)
    raw_psycopg(setup.table, 3, "after reconnect")
    setup.assert_invalidated(3, "after reconnect")


def test_keeps_retrying_while_the_server_is_unreachable(server: None, table: str) -> None:
    cache = Cache()
    hotels = cache.namespace("hotels", hotel_policy(table))
    hotels.set(1, "cached before the listener ever connected")
    invalidator = PostgresInvalidator(
        "postgresql://postgres@127.0.0.1:1/test",
        cache,
        reconnect_backoff=0.01,
        max_reconnect_backoff=0.02,
    )
    invalidator.start()
    try:
        eventually(lambda: invalidator.counters.errors >= 3, "connection attempts retried")
        assert not invalidator.ready
    finally:
        invalidator.stop()
    assert hotels.get(1) is not None  # never connected: nothing was flushed, nothing routed


def test_first_connection_flushes_entries_loaded_before_it(server: None, table: str) -> None:
    cache = Cache()
    hotels = cache.namespace("hotels", hotel_policy(table))
    hotels.set(1, "loaded before LISTEN")
    with listening(cache) as invalidator:
        assert hotels.get(1) is None
        assert invalidator.counters.full_invalidations == 1
        assert invalidator.counters.reconnects == 0


def test_a_restarted_listener_flushes(make_setup: Callable[..., Setup]) -> None:
    setup = make_setup()
    setup.invalidator.stop()
    setup.load(1)
    raw_psycopg(setup.table, 1, "changed while stopped")  # nobody listening: not notified
    setup.invalidator.start()
    assert setup.invalidator.wait_ready(WAIT)
    assert setup.invalidator.counters.reconnects == 1
    assert setup.cached(1) is None


def test_an_invalidation_that_fails_is_retried_by_reconnecting(server: None, table: str) -> None:
    cache = Cache()
    hotels = cache.namespace("hotels", hotel_policy(table))
    # The key delete fails, then the flush that replaces it: the listener drops its
    # connection, and the reconnection's flush finally lands.
    flaky = Flaky(hotels, failures=0)
    with listening(EventRouter([flaky]), reconnect_backoff=0.01) as invalidator:
        hotels.set(1, "stale soon")
        flaky.failures = 2
        raw_psycopg(table, 1, "changed")
        eventually(lambda: invalidator.counters.reconnects == 1, "reconnected")
        eventually(lambda: hotels.get(1) is None, "invalidated after all")
        assert invalidator.counters.errors == 2  # the failed change, the dropped connection
        assert flaky.failures == 0


def test_unreadable_notification_flushes_everything(make_setup: Callable[..., Setup]) -> None:
    setup = make_setup()
    setup.load(1)
    execute("SELECT pg_notify(%s, 'not json')", (setup.invalidator.channel,))
    eventually(lambda: setup.cached(1) is None, "flushed")
    assert setup.invalidator.counters.errors == 1
    assert setup.invalidator.counters.full_invalidations == 1


# --- installation --------------------------------------------------------------------------


def test_install_is_idempotent_and_uninstall_removes_the_triggers(
    make_setup: Callable[..., Setup],
) -> None:
    setup = make_setup()
    setup.invalidator.install()
    triggers_sql = "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass ORDER BY tgname"
    channel = setup.invalidator.channel
    assert execute(triggers_sql, (setup.table,)) == [(f"{channel}_row",), (f"{channel}_truncate",)]
    setup.invalidator.uninstall()
    assert execute(triggers_sql, (setup.table,)) == []
    # The function goes with the last trigger using it (another channel's would keep it).
    users = execute(
        "SELECT count(*) FROM pg_trigger JOIN pg_proc ON pg_proc.oid = tgfoid WHERE proname = %s",
        (FUNCTION_NAME,),
    )
    functions = execute("SELECT count(*) FROM pg_proc WHERE proname = %s", (FUNCTION_NAME,))
    assert functions == ([(1,)] if users != [(0,)] else [(0,)])
    before = setup.invalidator.counters.notifications
    setup.load(1)
    raw_psycopg(setup.table, 1, "unwatched")
    execute("SELECT pg_notify(%s, %s)", (channel, json.dumps({"table": "other", "rows": []})))
    eventually(lambda: setup.invalidator.counters.notifications == before + 1, "marker heard")
    assert setup.cached(1) == "hotel 1"


def test_install_refuses_missing_tables_and_columns(server: None, table: str) -> None:
    cache = Cache()
    cache.namespace("a", hotel_policy(table, key_columns=("hotel_id",), keys=("{hotel_id}",)))
    with pytest.raises(ConfigurationError, match="hotel_id are not columns"):
        PostgresInvalidator(DSN, cache).install()
    other = Cache()
    other.namespace("b", hotel_policy("no_such_table_here"))
    with pytest.raises(ConfigurationError, match="does not exist"):
        PostgresInvalidator(DSN, other).install()


def test_an_invalidator_needs_declared_tables() -> None:
    cache = Cache()
    cache.namespace("plain", Policy(pattern=ReadThrough(), invalidation=Ttl(60)))
    with pytest.raises(ConfigurationError, match="no namespace declares OnTableChange"):
        PostgresInvalidator(DSN, cache)
    with pytest.raises(ConfigurationError, match="no namespace declares OnTableChange"):
        PostgresInvalidator(DSN, EventRouter([]))
    with pytest.raises(ConfigurationError, match="channel"):
        PostgresInvalidator(DSN, cache, channel="x" * 60)


# --- pure pieces ---------------------------------------------------------------------------


def test_payloads_are_read_strictly() -> None:
    change = TableChange.from_json('{"table": "t", "op": "UPDATE", "rows": [{"id": 1}, {"id": 2}]}')
    assert change == TableChange("t", "UPDATE", ({"id": 1}, {"id": 2}))
    assert TableChange.from_json('{"table": "t", "op": "TRUNCATE"}').rows is None
    assert TableChange.from_json('{"table": "t", "op": "INSERT", "overflow": true}').rows is None
    for bad in (
        "[]",
        '{"op": "UPDATE"}',
        '{"table": "t", "op": "UPDATE"}',
        '{"table": "t", "rows": [1]}',
        "x",
    ):
        with pytest.raises(ValueError, match=r"table change|Expecting|Extra data"):
            TableChange.from_json(bad)


def test_reconnect_delay_grows_with_jitter_and_is_capped() -> None:
    assert reconnect_delay(0, 0.1, 5.0, lambda: 0.0) == pytest.approx(0.05)
    assert reconnect_delay(0, 0.1, 5.0, lambda: 1.0) == pytest.approx(0.1)
    assert reconnect_delay(3, 0.1, 5.0, lambda: 1.0) == pytest.approx(0.8)
    assert reconnect_delay(10, 0.1, 5.0, lambda: 1.0) == pytest.approx(5.0)
    assert reconnect_delay(10_000, 0.1, 5.0, lambda: 0.0) == pytest.approx(2.5)
