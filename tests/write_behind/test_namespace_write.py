"""``Namespace.write`` under ``WriteBehind``: the journal first, then the cache, then the
flusher applies to the source (SQLite here; PostgreSQL in test_kill9.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import redis

from steadycache import (
    AsyncCache,
    Cache,
    ConfigurationError,
    Policy,
    RedisBackend,
    SerializationError,
    Ttl,
    UsageError,
    WriteBehind,
    WriteThrough,
)
from steadycache.write_behind import WriteRecord
from tests.redis_servers import RedisServer


def source_db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("CREATE TABLE IF NOT EXISTS profile (id TEXT PRIMARY KEY, name TEXT, seq TEXT)")
    db.execute("CREATE TABLE IF NOT EXISTS applied (idempotency_key TEXT PRIMARY KEY)")
    return db


def idempotent_writer(db: sqlite3.Connection):  # type: ignore[no-untyped-def]
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


def test_a_write_is_cached_at_once_and_reaches_the_source_through_the_flusher(
    tmp_path: Path,
) -> None:
    db = source_db(tmp_path / "source.db")
    policy = Policy(
        pattern=WriteBehind(sqlite_path=str(tmp_path / "journal.db")), invalidation=Ttl(3600)
    )
    with Cache() as cache:
        profiles = cache.namespace("profile", policy)
        first = profiles.write("u1", {"name": "Ada"})
        profiles.write("u1", {"name": "Ada L."})
        profiles.write("u2", {"name": "Grace"})
        assert isinstance(first, WriteRecord)
        assert profiles.get("u1") == {"name": "Ada L."}  # readers see it before the source
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


def test_bad_input_is_refused_before_the_journal_sees_it(tmp_path: Path) -> None:
    policy = Policy(pattern=WriteBehind(sqlite_path=str(tmp_path / "journal.db")))
    with Cache() as cache:
        profiles = cache.namespace("profile", policy)
        with pytest.raises(SerializationError):
            profiles.write("u1", {"name": object()})
        with pytest.raises(UsageError, match="Flusher"):
            profiles.write("u1", {"name": "x"}, writer=lambda value: None)
        assert profiles.journal.depth() == 0
        assert profiles.get("u1") is None


def test_a_journal_on_a_redis_that_cannot_keep_it_is_refused(plain_client: redis.Redis) -> None:
    url = "redis://{host}:{port}/{db}".format(**plain_client.connection_pool.connection_kwargs)
    with Cache(redis=RedisBackend(url)) as cache:
        with pytest.raises(ConfigurationError, match="not durable"):
            cache.namespace("orders", Policy(pattern=WriteBehind(journal="redis")))
        accepted = cache.namespace(
            "orders2",
            Policy(
                pattern=WriteBehind(
                    journal="redis", accept_loss="payments team: replayed from the ledger"
                )
            ),
        )
        accepted.write(("o", 1), {"total": 10})
        assert accepted.journal.depth() == 1
        assert accepted.journal.appends_at_risk == 1


def test_a_redis_journal_with_an_fsynced_aof_is_accepted(durable_redis: RedisServer) -> None:
    with Cache(redis=RedisBackend(durable_redis.url)) as cache:
        orders = cache.namespace("orders", Policy(pattern=WriteBehind(journal="redis")))
        orders.write(("o", 1), {"total": 10})
        orders.write(("o", 1), {"total": 12})
        applied: list[tuple[object, object]] = []
        report = orders.flusher(
            lambda record: applied.append((record.key, record.value)), consumer="a"
        ).run_once()
        assert report.applied == 1
        assert applied == [(("o", 1), {"total": 12})]
        assert orders.journal.depth() == 0


async def test_async_write_through_and_write_behind(tmp_path: Path) -> None:
    database: dict[str, object] = {}

    async def save(value: object) -> None:
        database["k"] = value

    async with AsyncCache() as cache:
        through = cache.namespace("t", Policy(pattern=WriteThrough(), invalidation=Ttl(3600)))
        await through.set("k", "cached")
        await through.write("k", "v1", writer=save)
        assert database == {"k": "v1"}
        assert await through.get("k") is None
        behind = cache.namespace(
            "b", Policy(pattern=WriteBehind(sqlite_path=str(tmp_path / "journal.db")))
        )
        record = await behind.write("k", {"n": 1})
        assert isinstance(record, WriteRecord)
        assert await behind.get("k") == {"n": 1}
        assert behind.journal.depth() == 1
