"""SQLite outbox invalidation: every write path (none calling steadycache), gaps, peers."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, Text, create_engine, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from steadycache import Cache, Invalidation, Namespace, Policy, ReadThrough, Ttl
from steadycache.errors import ConfigurationError, UsageError
from steadycache.invalidation.router import EventRouter
from steadycache.invalidation.sqlite_outbox import OUTBOX_TABLE, SqliteOutboxInvalidator
from steadycache.policy import OnTableChange
from tests.invalidation.test_postgres_invalidation import Flaky

WAIT = 5.0
MISSING = "<no such hotel>"


def eventually(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout}s: {what}")
        time.sleep(0.01)


def execute(path: Path, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """One statement in its own connection and transaction: a writer unknown to steadycache."""
    conn = sqlite3.connect(path)
    try:
        with conn:  # commits, or rolls back on error
            return conn.execute(statement, params).fetchall()
    finally:
        conn.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "app.db"
    execute(path, "CREATE TABLE hotels (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT)")
    for hotel_id in range(1, 7):
        execute(path, "INSERT INTO hotels VALUES (?, ?, 'paris')", (hotel_id, f"hotel {hotel_id}"))
    return path


def read_name(path: Path, hotel_id: int) -> str:
    rows = execute(path, "SELECT name FROM hotels WHERE id = ?", (hotel_id,))
    return str(rows[0][0]) if rows else MISSING


def hotel_policy(table: str = "hotels", key: str = "id") -> Policy:
    return Policy(
        pattern=ReadThrough(),
        invalidation=Invalidation(
            ttl=Ttl(3600),
            owner="hotel-team",
            triggers=(OnTableChange(table, key_columns=(key,), keys=(f"{{{key}}}",)),),
        ),
    )


class Setup:
    """A cache whose namespace reads the table, and an outbox poller for it."""

    def __init__(self, path: Path, invalidator: SqliteOutboxInvalidator, hotels: Namespace) -> None:
        self.path = path
        self.invalidator = invalidator
        self.hotels = hotels

    def load(self, hotel_id: int) -> str:
        return str(self.hotels.get_or_load(hotel_id, lambda: read_name(self.path, hotel_id)))

    def cached(self, hotel_id: int) -> object:
        return self.hotels.get(hotel_id)

    def assert_invalidated(self, hotel_id: int, now_reads: str) -> None:
        eventually(lambda: self.cached(hotel_id) is None, f"hotel {hotel_id} invalidated")
        assert self.load(hotel_id) == now_reads


@pytest.fixture
def make_setup(db: Path) -> Iterator[Callable[..., Setup]]:
    made: list[SqliteOutboxInvalidator] = []

    def make(*, start: bool = True, **options: Any) -> Setup:
        cache = Cache()
        hotels = cache.namespace("hotels", hotel_policy())
        options.setdefault("poll_interval", 0.01)
        invalidator = SqliteOutboxInvalidator(db, cache, **options)
        made.append(invalidator)
        invalidator.install()
        if start:
            invalidator.start()
        return Setup(db, invalidator, hotels)

    yield make
    for invalidator in made:
        invalidator.stop()


# --- the five write paths ------------------------------------------------------------------


def sqlite3_module(path: Path, hotel_id: int, name: str) -> None:
    execute(path, "UPDATE hotels SET name = ? WHERE id = ?", (name, hotel_id))


def sqlalchemy_orm(path: Path, hotel_id: int, name: str) -> None:
    class Base(DeclarativeBase):
        pass

    class Hotel(Base):
        __tablename__ = "hotels"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str]
        city: Mapped[str | None]

    engine = create_engine(f"sqlite:///{path}")
    try:
        with Session(engine) as session:
            hotel = session.get(Hotel, hotel_id)
            assert hotel is not None
            hotel.name = name
            session.commit()
    finally:
        engine.dispose()


def sqlalchemy_core_bulk(path: Path, hotel_ids: list[int], name: str) -> None:
    hotels = Table(
        "hotels", MetaData(), Column("id", Integer, primary_key=True), Column("name", Text)
    )
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            result = conn.execute(
                update(hotels).where(hotels.c.id.in_(hotel_ids)).values(name=name)
            )
            assert result.rowcount == len(hotel_ids)
    finally:
        engine.dispose()


def sqlite3_shell_or_python(path: Path, hotel_id: int, name: str) -> None:
    shell = shutil.which("sqlite3")
    if shell is None:
        another_python_process(path, hotel_id, name)
        return
    subprocess.run(
        [shell, "-bail", str(path), f"UPDATE hotels SET name = '{name}' WHERE id = {hotel_id};"],
        check=True,
        capture_output=True,
        timeout=30,
    )


def another_python_process(path: Path, hotel_id: int, name: str) -> None:
    code = textwrap.dedent(
        """
        import sqlite3, sys
        conn = sqlite3.connect(sys.argv[1])
        with conn:
            conn.execute("UPDATE hotels SET name = ? WHERE id = ?", (sys.argv[3], int(sys.argv[2])))
        conn.close()
        """
    )
    subprocess.run(
        [sys.executable, "-c", code, str(path), str(hotel_id), name],
        check=True,
        capture_output=True,
        timeout=30,
    )


def upsert(path: Path, hotel_id: int, name: str) -> None:
    execute(
        path,
        "INSERT INTO hotels (id, name) VALUES (?, ?) "
        "ON CONFLICT (id) DO UPDATE SET name = excluded.name",
        (hotel_id, name),
    )


def insert_or_replace(path: Path, hotel_id: int, name: str) -> None:
    execute(path, "INSERT OR REPLACE INTO hotels (id, name) VALUES (?, ?)", (hotel_id, name))


def delete_and_reinsert(path: Path, hotel_id: int, name: str) -> None:
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute("DELETE FROM hotels WHERE id = ?", (hotel_id,))
            conn.execute("INSERT INTO hotels (id, name) VALUES (?, ?)", (hotel_id, name))
    finally:
        conn.close()


SINGLE_ROW_PATHS = {
    "sqlite3 module UPDATE": sqlite3_module,
    "SQLAlchemy ORM": sqlalchemy_orm,
    "sqlite3 shell (or another Python process)": sqlite3_shell_or_python,
    "another Python process": another_python_process,
    "INSERT ON CONFLICT DO UPDATE": upsert,
    "INSERT OR REPLACE": insert_or_replace,
    "DELETE and re-INSERT": delete_and_reinsert,
}


def test_every_write_path_invalidates(make_setup: Callable[..., Setup]) -> None:
    setup = make_setup()
    for number, (path, write) in enumerate(SINGLE_ROW_PATHS.items(), start=1):
        assert setup.load(1) == read_name(setup.path, 1)
        assert setup.cached(1) is not None
        new_name = f"renamed by {number}"
        write(setup.path, 1, new_name)
        assert read_name(setup.path, 1) == new_name, path
        setup.assert_invalidated(1, new_name)

    for hotel_id in (2, 3, 4, 5):
        setup.load(hotel_id)
    sqlalchemy_core_bulk(setup.path, [2, 3, 4], "bulk")
    for hotel_id in (2, 3, 4):
        setup.assert_invalidated(hotel_id, "bulk")
    assert setup.cached(5) == "hotel 5"  # untouched rows stay cached
    assert setup.invalidator.counters.full_invalidations == 0
    assert setup.invalidator.counters.errors == 0


def test_rolled_back_write_leaves_no_outbox_row(make_setup: Callable[..., Setup]) -> None:
    setup = make_setup(start=False)
    setup.invalidator.poll_once()  # sets the cursor
    setup.load(1)
    setup.load(2)
    conn = sqlite3.connect(setup.path)
    conn.execute("UPDATE hotels SET name = 'never' WHERE id = 1")
    conn.rollback()
    conn.close()
    sqlite3_module(setup.path, 2, "later")
    assert setup.invalidator.poll_once() == 1
    assert setup.cached(1) == "hotel 1"
    assert setup.cached(2) is None


def test_key_column_change_invalidates_old_and_new_key(make_setup: Callable[..., Setup]) -> None:
    setup = make_setup()
    assert setup.load(1) == "hotel 1"
    assert setup.load(100) == MISSING  # a cached "not found"
    execute(setup.path, "UPDATE hotels SET id = 100 WHERE id = 1")
    setup.assert_invalidated(1, MISSING)
    setup.assert_invalidated(100, "hotel 1")


def test_a_trigger_invalidation_is_counted_as_an_invalidation_not_a_delete(
    make_setup: Callable[..., Setup],
) -> None:
    setup = make_setup()
    setup.load(2)
    execute(setup.path, "UPDATE hotels SET name = 'renamed' WHERE id = 2")
    setup.assert_invalidated(2, "renamed")
    stats = setup.hotels.stats()
    assert stats.invalidations == 1
    assert stats.deletes == 0


def test_insert_and_delete_invalidate(make_setup: Callable[..., Setup]) -> None:
    setup = make_setup()
    assert setup.load(50) == MISSING
    setup.load(6)
    execute(setup.path, "INSERT INTO hotels (id, name) VALUES (50, 'new')")
    execute(setup.path, "DELETE FROM hotels WHERE id = 6")
    setup.assert_invalidated(50, "new")
    setup.assert_invalidated(6, MISSING)


def test_delete_of_every_row_reports_each(make_setup: Callable[..., Setup]) -> None:
    # SQLite skips its truncate optimisation when the table has triggers: rows are reported.
    setup = make_setup(start=False)
    setup.invalidator.poll_once()
    for hotel_id in range(1, 7):
        setup.load(hotel_id)
    execute(setup.path, "DELETE FROM hotels")
    assert setup.invalidator.poll_once() == 6
    assert all(setup.cached(hotel_id) is None for hotel_id in range(1, 7))


# --- cursors, peers and gaps ---------------------------------------------------------------


def test_two_pollers_each_see_every_change(make_setup: Callable[..., Setup]) -> None:
    first = make_setup()
    second = make_setup()
    first.load(1)
    second.load(1)
    sqlite3_module(first.path, 1, "seen by both")
    first.assert_invalidated(1, "seen by both")
    second.assert_invalidated(1, "seen by both")
    assert first.invalidator.counters.gaps == second.invalidator.counters.gaps == 0


def test_a_poller_behind_the_retention_flushes(make_setup: Callable[..., Setup]) -> None:
    lagging = make_setup(start=False)
    lagging.invalidator.poll_once()
    pruning = make_setup(start=False, retention=0.001)
    pruning.invalidator.poll_once()
    lagging.load(1)
    lagging.load(5)
    sqlite3_module(lagging.path, 1, "changed while lagging")
    time.sleep(0.01)  # older than the pruner's retention
    assert pruning.invalidator.poll_once() == 1
    assert pruning.invalidator.counters.pruned == 1
    assert execute(lagging.path, f"SELECT count(*) FROM {OUTBOX_TABLE}") == [(0,)]
    # The lagging poller cannot tell which keys changed: it flushes, untouched keys too.
    assert lagging.invalidator.poll_once() == 0
    assert lagging.invalidator.counters.gaps == 1
    assert lagging.invalidator.counters.full_invalidations == 1
    assert lagging.cached(1) is None
    assert lagging.cached(5) is None
    # And it carries on from the sequence: the next change is routed key by key.
    lagging.load(5)
    lagging.load(2)
    sqlite3_module(lagging.path, 2, "after the gap")
    assert lagging.invalidator.poll_once() == 1
    assert lagging.cached(2) is None
    assert lagging.cached(5) == "hotel 5"


def test_pruning_keeps_rows_the_pruner_has_not_routed(make_setup: Callable[..., Setup]) -> None:
    pruning = make_setup(start=False, retention=0.001)
    pruning.invalidator.poll_once()
    sqlite3_module(pruning.path, 1, "routed")
    time.sleep(0.01)
    assert pruning.invalidator.poll_once() == 1
    routed = pruning.invalidator.cursor
    assert routed is not None
    sqlite3_module(pruning.path, 2, "not routed yet")
    time.sleep(0.01)
    # A prune due now, before the next drain, may only take rows up to the cursor.
    pruning.invalidator._next_prune = float("-inf")
    conn = sqlite3.connect(pruning.path, isolation_level=None)
    try:
        pruning.invalidator._prune_if_due(conn)
    finally:
        conn.close()
    assert execute(pruning.path, f"SELECT id FROM {OUTBOX_TABLE}") == [(routed + 1,)]


def test_a_recreated_outbox_flushes_running_pollers(make_setup: Callable[..., Setup]) -> None:
    setup = make_setup(start=False)
    setup.invalidator.poll_once()
    for hotel_id in (1, 2):
        sqlite3_module(setup.path, hotel_id, "x")
    assert setup.invalidator.poll_once() == 2
    setup.load(3)
    setup.load(4)
    setup.invalidator.uninstall()
    setup.invalidator.install()
    # Enough writes to carry a sequence counting from 1 again past the poller's cursor.
    for name in ("a", "b", "c"):
        sqlite3_module(setup.path, 4, name)
    setup.invalidator.poll_once()
    assert setup.invalidator.counters.gaps == 1
    assert setup.cached(3) is None  # untouched, but the poller cannot know what it missed


def test_a_sequence_reset_below_the_cursor_flushes(make_setup: Callable[..., Setup]) -> None:
    setup = make_setup(start=False)
    setup.invalidator.poll_once()
    sqlite3_module(setup.path, 1, "x")
    assert setup.invalidator.poll_once() == 1
    setup.load(3)
    execute(setup.path, f"DELETE FROM {OUTBOX_TABLE}")
    execute(setup.path, "UPDATE sqlite_sequence SET seq = 0 WHERE name = ?", (OUTBOX_TABLE,))
    assert setup.invalidator.poll_once() == 0
    assert setup.invalidator.counters.gaps == 1
    assert setup.cached(3) is None
    sqlite3_module(setup.path, 2, "after the reset")  # id 1 again: routed from the new cursor
    setup.load(2)
    assert setup.invalidator.poll_once() == 1
    assert setup.cached(2) is None


def test_start_flushes_only_a_cache_that_holds_entries(make_setup: Callable[..., Setup]) -> None:
    empty = make_setup()
    assert empty.invalidator.counters.full_invalidations == 0
    filled = make_setup(start=False)
    filled.load(1)
    filled.invalidator.start()  # entries loaded before polling began may have missed changes
    assert filled.invalidator.counters.full_invalidations == 1
    assert filled.cached(1) is None


def test_start_begins_at_the_current_sequence(make_setup: Callable[..., Setup]) -> None:
    setup = make_setup(start=False)
    sqlite3_module(setup.path, 1, "before start")
    setup.invalidator.start()
    assert (
        setup.invalidator.cursor
        == execute(setup.path, "SELECT seq FROM sqlite_sequence WHERE name = ?", (OUTBOX_TABLE,))[
            0
        ][0]
    )
    setup.load(1)
    setup.load(2)
    sqlite3_module(setup.path, 2, "after start")
    setup.assert_invalidated(2, "after start")
    assert setup.cached(1) == "before start"


# --- failures ------------------------------------------------------------------------------


def test_a_locked_database_delays_but_loses_nothing(make_setup: Callable[..., Setup]) -> None:
    setup = make_setup(busy_timeout=0.02)
    setup.load(1)
    blocker = sqlite3.connect(setup.path, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")  # readers are locked out until commit
        blocker.execute("UPDATE hotels SET name = 'held' WHERE id = 1")
        eventually(lambda: setup.invalidator.counters.errors >= 2, "polls failing")
        assert setup.cached(1) == "hotel 1"
        blocker.execute("COMMIT")
    finally:
        blocker.close()
    setup.assert_invalidated(1, "held")
    assert setup.invalidator.counters.full_invalidations == 0


def test_a_failed_invalidation_is_retried_from_the_same_row(db: Path) -> None:
    cache = Cache()
    hotels = cache.namespace("hotels", hotel_policy())
    flaky = Flaky(hotels, failures=0)
    invalidator = SqliteOutboxInvalidator(db, EventRouter([flaky]), flush_on_start=False)
    invalidator.install()
    invalidator.poll_once()
    start = invalidator.cursor
    hotels.set(1, "stale soon")
    sqlite3_module(db, 1, "changed")
    flaky.failures = 2  # the key delete, then the flush that replaces it
    with pytest.raises(ConnectionError):
        invalidator.poll_once()
    assert invalidator.cursor == start
    assert hotels.get(1) == "stale soon"
    assert invalidator.poll_once() == 1  # the row waited in the outbox
    assert hotels.get(1) is None
    assert invalidator.counters.full_invalidations == 0


def test_a_blob_key_never_fails_the_write(tmp_path: Path) -> None:
    path = tmp_path / "blobs.db"
    execute(path, "CREATE TABLE files (name TEXT PRIMARY KEY, body TEXT)")
    cache = Cache()
    cache.namespace("files", hotel_policy("files", key="name"))
    invalidator = SqliteOutboxInvalidator(path, cache)
    invalidator.install()
    execute(path, "INSERT INTO files VALUES (?, 'x')", (b"\x01\x02",))
    assert execute(path, f"SELECT keys FROM {OUTBOX_TABLE}") == [('[{"name":"0102"}]',)]


def test_start_without_install_says_what_to_do(db: Path) -> None:
    cache = Cache()
    cache.namespace("hotels", hotel_policy())
    invalidator = SqliteOutboxInvalidator(db, cache)
    with pytest.raises(UsageError, match=r"install\(\) first"):
        invalidator.start()


def test_configuration_errors(db: Path) -> None:
    cache = Cache()
    cache.namespace("hotels", hotel_policy())
    with pytest.raises(ConfigurationError, match="database file"):
        SqliteOutboxInvalidator(":memory:", cache)
    missing = Cache()
    missing.namespace("nowhere", hotel_policy("nowhere"))
    with pytest.raises(ConfigurationError, match="does not exist"):
        SqliteOutboxInvalidator(db, missing).install()
    qualified = Cache()
    qualified.namespace("other", hotel_policy("other.hotels"))
    with pytest.raises(ConfigurationError, match="main database only"):
        SqliteOutboxInvalidator(db, qualified)
    wrong_column = Cache()
    wrong_column.namespace("hotels", hotel_policy(key="hotel_id"))
    with pytest.raises(ConfigurationError, match="hotel_id are not columns"):
        SqliteOutboxInvalidator(db, wrong_column).install()
    # A failed install leaves nothing half-made.
    assert execute(db, "SELECT name FROM sqlite_master WHERE type = 'trigger'") == []
