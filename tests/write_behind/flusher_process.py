"""A flusher that applies to PostgreSQL, run in its own process so a test can ``kill -9`` it.

``python -m tests.write_behind.flusher_process '<json config>'`` runs batches until killed (or
for ``max_seconds``). The same writer serves the in-process flusher that finishes the job.

The writer is the idempotent, ordered writer the flusher's contract asks for, in one
transaction per write:

- ``<t>_applied``: the idempotency key (primary key). Already there: a repeat, skip it.
- ``<t>_rows``: upsert ``WHERE version < sequence``, so an older write never lands on a newer
  one. A delete keeps the row as a tombstone (value NULL) so that its version still counts.
- ``<t>_deliveries``: every call of the writer that committed, repeats included, so the test
  can show a repeat happened and did nothing.

Fault injection: ``hang_on`` lists idempotency keys; after committing the first of them seen
once ``hang_after_applies`` writes were applied, the writer records it in ``<t>_hung`` and
sleeps instead of returning, so a kill lands exactly between the apply and the journal ack.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any, LiteralString

import psycopg
import redis
from psycopg import sql
from psycopg.types.json import Jsonb

from steadycache.write_behind import (
    Flusher,
    Journal,
    RedisStreamJournal,
    SqliteJournal,
    WriteRecord,
)

_TABLES: dict[str, LiteralString] = {
    "rows": 'key text PRIMARY KEY, value jsonb, version text COLLATE "C" NOT NULL',
    "applied": "idempotency_key text PRIMARY KEY, key text NOT NULL, sequence text NOT NULL,"
    " consumer text NOT NULL",
    "deliveries": "id bigserial PRIMARY KEY, idempotency_key text NOT NULL, consumer text NOT NULL",
    "hung": "idempotency_key text PRIMARY KEY",
}


def table(prefix: str, name: str) -> sql.Identifier:
    return sql.Identifier(f"{prefix}_{name}")


def query(template: LiteralString, prefix: str) -> sql.Composed:
    """``template`` with ``{rows}``, ``{applied}``, ... replaced by the test's table names."""
    return sql.SQL(template).format(**{name: table(prefix, name) for name in _TABLES})


def create_tables(connection: psycopg.Connection[Any], prefix: str) -> None:
    for name, columns in _TABLES.items():
        connection.execute(sql.SQL("CREATE TABLE {} (" + columns + ")").format(table(prefix, name)))


def drop_tables(connection: psycopg.Connection[Any], prefix: str) -> None:
    for name in _TABLES:
        connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table(prefix, name)))


def make_writer(
    dsn: str,
    prefix: str,
    *,
    consumer: str,
    pause_after_apply: float = 0.0,
    hang_on: frozenset[str] = frozenset(),
    hang_after_applies: int = 0,
) -> tuple[Callable[[WriteRecord], None], psycopg.Connection[Any]]:
    """The writer and the connection it uses (the caller closes it)."""
    # Autocommit: each transaction() block below is exactly one BEGIN ... COMMIT.
    connection = psycopg.connect(dsn, autocommit=True)
    applies = 0

    def write(record: WriteRecord) -> None:
        nonlocal applies
        key = str(record.key)
        with connection.transaction():
            connection.execute(
                query(
                    "INSERT INTO {deliveries} (idempotency_key, consumer) VALUES (%s, %s)", prefix
                ),
                (record.idempotency_key, consumer),
            )
            fresh = connection.execute(
                query(
                    "INSERT INTO {applied} (idempotency_key, key, sequence, consumer)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (idempotency_key) DO NOTHING",
                    prefix,
                ),
                (record.idempotency_key, key, record.sequence, consumer),
            ).rowcount
            if fresh:
                connection.execute(
                    query(
                        "INSERT INTO {rows} AS r (key, value, version) VALUES (%s, %s, %s)"
                        " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value,"
                        " version = EXCLUDED.version WHERE r.version < EXCLUDED.version",
                        prefix,
                    ),
                    (key, None if record.op == "delete" else Jsonb(record.value), record.sequence),
                )
        if not fresh:
            return
        applies += 1
        if record.idempotency_key in hang_on and applies > hang_after_applies:
            connection.execute(
                query("INSERT INTO {hung} (idempotency_key) VALUES (%s)", prefix),
                (record.idempotency_key,),
            )
            time.sleep(300)  # the test kills us here: applied, not acknowledged
        time.sleep(pause_after_apply)

    return write, connection


def build_journal(config: dict[str, Any]) -> tuple[Journal, Callable[[], None]]:
    """The journal described by ``config`` and how to close what it opened."""
    if config["journal"] == "sqlite":
        journal = SqliteJournal(config["sqlite_path"])
        return journal, journal.close
    client = redis.Redis(host=config["redis_host"], port=config["redis_port"])
    return RedisStreamJournal(client, config["stream"]), client.close


def main(argv: list[str]) -> None:
    config = json.loads(argv[1])
    journal, close = build_journal(config)
    write, connection = make_writer(
        config["dsn"],
        config["prefix"],
        consumer=config["consumer"],
        pause_after_apply=config["pause_after_apply"],
        hang_on=frozenset(config["hang_on"]),
        hang_after_applies=config["hang_after_applies"],
    )
    flusher = Flusher(
        journal,
        write,
        consumer=config["consumer"],
        claim_idle=config["claim_idle"],
        batch_size=config["batch_size"],
    )
    deadline = time.monotonic() + config["max_seconds"]
    try:
        while time.monotonic() < deadline:
            if not flusher.run_once().claimed:
                time.sleep(0.05)
    finally:
        connection.close()
        close()


if __name__ == "__main__":
    main(sys.argv)
