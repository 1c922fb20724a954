"""``write()`` under each write pattern: write-through writes the source, then invalidates
(or updates) the key; write-behind journals first, caches at once, and a ``Flusher``
applies the journal to the source later (SQLite here; PostgreSQL in test_kill9.py).

The Redis-journal tests stay hand-written in tests/write_behind/test_namespace_write.py:
``AsyncCache`` cannot open a Redis journal yet, and they need that directory's AOF server.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from steadycache import (
    AsyncCache,
    Policy,
    SerializationError,
    Ttl,
    UsageError,
    WriteBehind,
    WriteThrough,
)
from steadycache.write_behind import WriteRecord
from tests.concurrency import AsyncBackground, AsyncSignal, writing_async


def source_db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("CREATE TABLE IF NOT EXISTS profile (id TEXT PRIMARY KEY, name TEXT, seq TEXT)")
    db.execute("CREATE TABLE IF NOT EXISTS applied (idempotency_key TEXT PRIMARY KEY)")
    return db


def idempotent_writer(db: sqlite3.Connection) -> Callable[[WriteRecord], None]:
    """The flusher's writer (sync in both forms: the flusher runs in threads)."""

    def write(record: WriteRecord) -> None:
        with db:
            db.execute("BEGIN")
            inserted = db.execute(
                "INSERT OR IGNORE INTO applied VALUES (?)", (record.idempotency_key,)
            ).rowcount
            if inserted:
                db.execute(
                    "INSERT INTO profile VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                    "name = excluded.name, seq = excluded.seq WHERE profile.seq < excluded.seq",
                    (record.key, record.value["name"], record.sequence),
                )

    return write


# --- write-through ----------------------------------------------------------------------------


async def test_write_through_invalidates_by_default_and_updates_when_asked() -> None:
    database: dict[str, object] = {"k": "v0"}
    save = writing_async(database, "k")

    async def read() -> object:
        return database["k"]

    async with AsyncCache() as cache:
        ns = cache.namespace("p", Policy(pattern=WriteThrough(), invalidation=Ttl(3600)))
        assert await ns.get_or_load("k", read) == "v0"
        await ns.write("k", "v1", writer=save)
        assert database["k"] == "v1"
        assert await ns.get("k") is None  # invalidated: the next read loads what the source holds
        assert await ns.get_or_load("k", read) == "v1"
        updating = cache.namespace(
            "u", Policy(pattern=WriteThrough(on_write="update"), invalidation=Ttl(3600))
        )
        await updating.write("k", "v2", writer=save)
        assert await updating.get("k") == "v2"
        assert updating.stats().writes == 1


async def test_write_through_update_beats_a_load_already_in_flight() -> None:
    database: dict[str, object] = {"k": "old"}
    async with AsyncCache() as cache:
        ns = cache.namespace(
            "u", Policy(pattern=WriteThrough(on_write="update"), invalidation=Ttl(3600))
        )
        loading, written = AsyncSignal(), AsyncSignal()

        async def slow_loader() -> object:
            value = database["k"]  # reads "old"
            loading.set()
            await written.wait(5)
            return value

        reader = AsyncBackground(lambda: ns.get_or_load("k", slow_loader))
        assert await loading.wait(5)
        await ns.write("k", "new", writer=writing_async(database, "k"))
        written.set()
        await reader.result(5)
        assert await ns.get("k") == "new"


async def test_a_failing_writer_leaves_the_cache_alone_and_is_counted() -> None:
    async def broken(value: object) -> None:
        raise ConnectionError("database down")

    async with AsyncCache() as cache:
        ns = cache.namespace("p", Policy(pattern=WriteThrough(), invalidation=Ttl(3600)))
        await ns.set("k", "cached")
        with pytest.raises(ConnectionError):
            await ns.write("k", "v1", writer=broken)
        assert await ns.get("k") == "cached"
        assert ns.stats().write_errors == 1


async def test_write_needs_a_write_pattern_and_a_writer() -> None:
    async with AsyncCache() as cache:
        aside = cache.namespace("a")
        with pytest.raises(UsageError, match="cache-aside pattern"):
            await aside.write("k", 1, writer=writing_async({}, "k"))
        through = cache.namespace("t", Policy(pattern=WriteThrough()))
        with pytest.raises(UsageError, match="needs writer"):
            await through.write("k", 1)
        updating = cache.namespace("u", Policy(pattern=WriteThrough(on_write="update")))
        written: dict[str, object] = {}
        with pytest.raises(TypeError):
            await updating.write("k", object(), writer=writing_async(written, "k"))
        assert written == {}  # refused before the source was written


# --- write-behind -----------------------------------------------------------------------------


async def test_a_write_is_cached_at_once_and_reaches_the_source_through_the_flusher(
    tmp_path: Path,
) -> None:
    db = source_db(tmp_path / "source.db")
    policy = Policy(
        pattern=WriteBehind(sqlite_path=str(tmp_path / "journal.db")), invalidation=Ttl(3600)
    )
    async with AsyncCache() as cache:
        profiles = cache.namespace("profile", policy)
        first = await profiles.write("u1", {"name": "Ada"})
        await profiles.write("u1", {"name": "Ada L."})
        await profiles.write("u2", {"name": "Grace"})
        assert isinstance(first, WriteRecord)
        assert await profiles.get("u1") == {"name": "Ada L."}  # readers see it before the source
        assert profiles.journal.depth() == 3
        assert db.execute("SELECT count(*) FROM profile").fetchone() == (0,)
        flusher = profiles.flusher(idempotent_writer(db), consumer="test")
        report = flusher.run_once()
        assert report.applied == 2
        assert report.coalesced == 1  # the first write of u1 was superseded, never applied
        rows = dict(db.execute("SELECT id, name FROM profile").fetchall())
        assert rows == {"u1": "Ada L.", "u2": "Grace"}
        assert profiles.journal.depth() == 0
        stats = profiles.stats()
        assert (stats.journaled, stats.writes) == (3, 3)
    db.close()


async def test_bad_input_is_refused_before_the_journal_sees_it(tmp_path: Path) -> None:
    policy = Policy(pattern=WriteBehind(sqlite_path=str(tmp_path / "journal.db")))
    async with AsyncCache() as cache:
        profiles = cache.namespace("profile", policy)
        with pytest.raises(SerializationError):
            await profiles.write("u1", {"name": object()})
        with pytest.raises(UsageError, match="Flusher"):
            await profiles.write("u1", {"name": "x"}, writer=writing_async({}, "u1"))
        assert profiles.journal.depth() == 0
        assert await profiles.get("u1") is None


async def test_write_through_and_write_behind_side_by_side(tmp_path: Path) -> None:
    database: dict[str, object] = {}
    async with AsyncCache() as cache:
        through = cache.namespace("t", Policy(pattern=WriteThrough(), invalidation=Ttl(3600)))
        await through.set("k", "cached")
        await through.write("k", "v1", writer=writing_async(database, "k"))
        assert database == {"k": "v1"}
        assert await through.get("k") is None
        behind = cache.namespace(
            "b", Policy(pattern=WriteBehind(sqlite_path=str(tmp_path / "journal.db")))
        )
        record = await behind.write("k", {"n": 1})
        assert isinstance(record, WriteRecord)
        assert await behind.get("k") == {"n": 1}
        assert behind.journal.depth() == 1
