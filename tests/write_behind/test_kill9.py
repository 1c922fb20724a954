"""kill -9 mid-flush: no acknowledged write is lost and none is applied twice in effect.

For each journal: 300 acknowledged writes (sets and deletes) over 25 keys; a flusher process
applies them to PostgreSQL and is SIGKILLed right after committing a write and before
acknowledging it to the journal; a second flusher (another consumer) takes over the dead one's
leases and drains the journal. The keys are written in overlapping spans (key j only until
write 12 * (j + 1)), so last writes of keys are spread through the run and the flusher is
killed on one of them: that write can only be settled by a redelivery, never by coalescing.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from steadycache.write_behind import Flusher, Journal, WriteRecord
from tests.redis_servers import HOST, RedisServer
from tests.write_behind.conftest import POSTGRES_DSN, delete_stream_keys, unique_stream
from tests.write_behind.flusher_process import (
    build_journal,
    create_tables,
    drop_tables,
    make_writer,
    query,
)

ROOT = Path(__file__).resolve().parents[2]
WRITES = 300
KEYS = 25
CLAIM_IDLE = 1.0
NAMESPACE = "seats"


def key_for(position: int) -> str:
    """Round robin over the keys still "alive" at this position (key j until 12 * (j + 1))."""
    alive = [j for j in range(KEYS) if 12 * (j + 1) > position]
    return f"k{alive[position % len(alive)]:02d}"


def append_all(journal: Journal) -> list[WriteRecord]:
    written = []
    for position in range(WRITES):
        if position % 9 == 8:
            written.append(journal.append(NAMESPACE, key_for(position), None, None, op="delete"))
        else:
            written.append(journal.append(NAMESPACE, key_for(position), None, {"n": position}))
    return written


def die_with_parent() -> Callable[[], None]:
    """Have the kernel SIGKILL the flusher process if this test process dies first."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def arm() -> None:
        prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG

    return arm


def poll(probe: Callable[[], Any], *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def journal_idempotency_keys(config: dict[str, Any]) -> set[str]:
    """Every write still in the journal, read behind the journal's back."""
    if config["journal"] == "sqlite":
        with sqlite3.connect(config["sqlite_path"]) as db:
            texts = [row[0] for row in db.execute("SELECT record FROM journal")]
        db.close()
    else:
        with redis.Redis(host=HOST, port=config["redis_port"]) as client:
            texts = [fields[b"record"] for _, fields in client.xrange(config["stream"])]
    return {json.loads(text)["idempotency_key"] for text in texts}


def applied_keys(connection: psycopg.Connection[Any], prefix: str) -> set[str]:
    return {
        str(row[0])
        for row in connection.execute(query("SELECT idempotency_key FROM {applied}", prefix))
    }


@pytest.fixture
def tables(postgres: psycopg.Connection[Any]) -> Iterator[str]:
    prefix = f"wb_kill_{uuid.uuid4().hex[:10]}"
    create_tables(postgres, prefix)
    try:
        yield prefix
    finally:
        drop_tables(postgres, prefix)


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_kill_9_mid_flush_loses_nothing_and_applies_nothing_twice(
    kind: str,
    tables: str,
    postgres: psycopg.Connection[Any],
    durable_redis: RedisServer,
    tmp_path: Path,
) -> None:
    config: dict[str, Any] = {
        "journal": kind,
        "sqlite_path": str(tmp_path / "journal.sqlite3"),
        "redis_host": HOST,
        "redis_port": durable_redis.port,
        "stream": unique_stream(),
        "dsn": POSTGRES_DSN,
        "prefix": tables,
    }
    journal, close_journal = build_journal(config)
    writer, writer_connection = make_writer(POSTGRES_DSN, tables, consumer="B")
    try:
        written = append_all(journal)
        last = {record.key: record for record in written}
        assert len(last) == KEYS

        dead = run_and_kill(config, postgres, hang_on=[r.idempotency_key for r in last.values()])
        in_journal = journal_idempotency_keys(config)
        applied_by_dead = applied_keys(postgres, tables)
        assert len(applied_by_dead) > 5
        assert dead in applied_by_dead
        assert dead in in_journal  # applied, not acknowledged: the window the kill aimed at

        takeover = Flusher(journal, writer, consumer="B", claim_idle=CLAIM_IDLE, batch_size=50)
        deadline = time.monotonic() + 20
        while journal.depth():
            takeover.run_once()
            assert time.monotonic() < deadline, "the second flusher did not drain the journal"
            time.sleep(0.01)
        metrics = takeover.metrics()
        dead_letters = journal.dead_letters()
    finally:
        writer_connection.close()
        close_journal()
        if kind == "redis":
            with durable_redis.client() as client:
                delete_stream_keys(client, config["stream"])

    assert dead_letters == []
    assert (metrics.depth, metrics.lag, metrics.writer_errors) == (0, 0.0, 0)
    assert metrics.claimed_from_others > 0  # the dead flusher's leases were taken over

    # Every key holds its last acknowledged write, at that write's sequence.
    rows = {
        key: (value, version)
        for key, value, version in postgres.execute(
            query("SELECT key, value, version FROM {rows}", tables)
        )
    }
    assert rows == {
        key: (None if record.op == "delete" else record.value, record.sequence)
        for key, record in last.items()
    }

    # Applied at most once each (the primary key enforces it; the counts show it held).
    applied_rows = postgres.execute(
        query("SELECT idempotency_key, sequence, key FROM {applied}", tables)
    ).fetchall()
    applied = {row[0]: row for row in applied_rows}
    assert len(applied) == len(applied_rows)
    by_key = {record.idempotency_key: record for record in written}
    assert set(applied) <= set(by_key)

    # Nothing lost: every write was applied, or a newer write of its key was.
    newest_applied: dict[str, str] = {}
    for _, sequence, key in applied_rows:
        newest_applied[key] = max(sequence, newest_applied.get(key, ""))
    for record in written:
        assert record.idempotency_key in applied or newest_applied[record.key] > record.sequence, (
            f"write {record.sequence} of {record.key} was lost"
        )

    # The write the kill interrupted was delivered again and skipped: twice delivered, once
    # applied. Others may have been redelivered too; each of those was applied once as well.
    deliveries: dict[str, int] = {}
    for (idempotency_key,) in postgres.execute(
        query("SELECT idempotency_key FROM {deliveries}", tables)
    ):
        deliveries[idempotency_key] = deliveries.get(idempotency_key, 0) + 1
    assert deliveries[dead] == 2
    assert all(key in applied for key, count in deliveries.items() if count > 1)


def run_and_kill(
    config: dict[str, Any], postgres: psycopg.Connection[Any], *, hang_on: list[str]
) -> str:
    """Run the first flusher until it hangs after an apply, SIGKILL it; the hung write's key."""
    process_config = config | {
        "consumer": "A",
        "claim_idle": CLAIM_IDLE,
        "batch_size": 50,
        "pause_after_apply": 0.02,
        "hang_on": hang_on,
        "hang_after_applies": 5,
        "max_seconds": 60,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.write_behind.flusher_process", json.dumps(process_config)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=die_with_parent(),  # noqa: PLW1509 - only arms PR_SET_PDEATHSIG
    )
    try:

        def hung() -> str | None:
            if process.poll() is not None:
                _, stderr = process.communicate()
                raise AssertionError(f"the flusher process exited early:\n{stderr.decode()}")
            row = postgres.execute(
                query("SELECT idempotency_key FROM {hung}", config["prefix"])
            ).fetchone()
            return None if row is None else str(row[0])

        dead: str = poll(hung, timeout=20, what="the flusher process to apply and hang")
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL
        return dead
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
