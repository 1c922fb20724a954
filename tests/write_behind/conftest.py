"""Fixtures for write-behind: real Redis servers, a real PostgreSQL, journals of both kinds.

- ``durable_redis``: a redis-server of our own with ``appendonly yes``, ``appendfsync always``
  (its AOF in the session's temporary directory), started once per session, emptied per test.
- ``plain_client``: this session's own plain Redis (``appendonly no``, see ``tests/conftest.py``),
  for the refusal and the ``accept_loss`` path. Tests still use unique stream names.
- ``postgres``: database ``test`` on 127.0.0.1:5432 (user postgres, trust auth).

A missing service fails the test, never skips it: CI must run every one of these.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from steadycache.write_behind import Journal, RedisStreamJournal, SqliteJournal
from tests.conftest import ManualClock
from tests.redis_servers import HOST, RedisServer

POSTGRES_DSN = f"host={HOST} port=5432 user=postgres dbname=test connect_timeout=5"

#: Makes a journal; ``clock`` (optional) replaces the wall clock for lag and backoff.
JournalFactory = Callable[..., Journal]


def _where() -> str:
    return "CI" if os.environ.get("CI") == "true" else "this machine"


def unique_stream() -> str:
    # A hash tag, as a Redis Cluster deployment would need: every journal key shares the slot.
    return f"{{wb-test-{uuid.uuid4().hex[:12]}}}:journal"


def delete_stream_keys(client: redis.Redis, stream: str) -> None:
    for suffix in ("", ":dead", ":keys", ":applied", ":retry", ":index"):
        client.delete(stream + suffix)


@pytest.fixture(scope="session")
def write_behind_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("write-behind-redis")


@pytest.fixture(scope="session")
def durable_redis_session(write_behind_root: Path) -> Iterator[RedisServer]:
    # Given after RedisServer's own "--appendonly no", these win: the last directive counts.
    server = RedisServer(
        write_behind_root,
        name="aof-always",
        args=["--appendonly", "yes", "--appendfsync", "always"],
    )
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def durable_redis(durable_redis_session: RedisServer) -> RedisServer:
    """Our own AOF-always server, running and empty."""
    durable_redis_session.start()
    durable_redis_session.execute("FLUSHALL")
    return durable_redis_session


@pytest.fixture
def durable_client(durable_redis: RedisServer) -> Iterator[redis.Redis]:
    client = durable_redis.client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def plain_client(plain_redis: RedisServer) -> Iterator[redis.Redis]:
    """A text client of this session's own Redis without persistence (``appendonly no``)."""
    client = plain_redis.client(decode_responses=True)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def postgres() -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit connection to database ``test``. Fails, never skips, when it is down."""
    try:
        connection = psycopg.connect(POSTGRES_DSN, autocommit=True)
    except psycopg.Error as exc:
        pytest.fail(
            f"PostgreSQL on {HOST}:5432 (database test, user postgres) is not answering on "
            f"{_where()} ({exc!r}); it is expected to be running before the tests",
            pytrace=False,
        )
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def sqlite_journal_factory(tmp_path: Path) -> Iterator[JournalFactory]:
    opened: list[SqliteJournal] = []

    def make(*, clock: ManualClock | None = None) -> Journal:
        path = tmp_path / "journal.sqlite3"
        journal = SqliteJournal(path) if clock is None else SqliteJournal(path, clock=clock)
        opened.append(journal)
        return journal

    yield make
    for journal in opened:
        journal.close()


@pytest.fixture
def redis_journal_factory(durable_redis: RedisServer) -> Iterator[JournalFactory]:
    client = durable_redis.client()
    stream = unique_stream()

    def make(*, clock: ManualClock | None = None) -> Journal:
        if clock is None:
            return RedisStreamJournal(client, stream)
        return RedisStreamJournal(client, stream, clock=clock)

    try:
        yield make
    finally:
        client.close()


@pytest.fixture(params=["sqlite", "redis"])
def make_journal(request: pytest.FixtureRequest) -> JournalFactory:
    """Both journals, one after the other, through the same contract tests."""
    factory: JournalFactory = request.getfixturevalue(f"{request.param}_journal_factory")
    return factory
