"""The Redis journal refuses a server that cannot keep acknowledged writes, unless told to."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import redis

from steadycache.errors import ConfigurationError, StoreError
from steadycache.write_behind import Flusher, RedisStreamJournal, WriteRecord
from steadycache.write_behind.redis_journal import (
    LOSS_EVERYSEC,
    LOSS_FSYNC_NO,
    LOSS_NO_CONFIG,
    LOSS_WITHOUT_AOF,
)
from tests.redis_servers import RedisServer, ReplicaPair
from tests.write_behind.conftest import delete_stream_keys, unique_stream


@pytest.fixture
def plain_stream(plain_client: redis.Redis) -> Iterator[str]:
    stream = unique_stream()
    try:
        yield stream
    finally:
        delete_stream_keys(plain_client, stream)


def test_aof_always_is_accepted(durable_client: redis.Redis) -> None:
    journal = RedisStreamJournal(durable_client, unique_stream())
    assert journal.durable
    assert "appendfsync always" in journal.durability
    journal.append("ns", "k", None, 1)
    assert journal.appends_at_risk == 0


def test_no_aof_is_refused_with_what_would_be_lost(
    plain_client: redis.Redis, plain_stream: str
) -> None:
    premise = cast(dict[str, str], plain_client.config_get("appendonly"))
    assert premise == {"appendonly": "no"}
    with pytest.raises(ConfigurationError) as caught:
        RedisStreamJournal(plain_client, plain_stream)
    assert caught.value.decision == "pattern"
    assert LOSS_WITHOUT_AOF in str(caught.value)
    assert "accept_loss" in str(caught.value)
    assert not plain_client.exists(plain_stream)  # refused before creating anything


def test_accepted_loss_warns_once_and_counts_every_append(
    plain_client: redis.Redis, plain_stream: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="steadycache")
    journal = RedisStreamJournal(
        plain_client, plain_stream, accept_loss="ops: a cache of view counters, 2024-05"
    )
    warnings = [r for r in caplog.records if "not durable" in r.getMessage()]
    assert len(warnings) == 1
    assert "ops: a cache of view counters" in warnings[0].getMessage()
    assert not journal.durable

    applied: list[WriteRecord] = []
    flusher = Flusher(journal, applied.append, consumer="f1")
    for value in range(3):
        journal.append("ns", "k", None, value)
    flusher.run_once()
    assert [record.value for record in applied] == [2]
    assert flusher.metrics().appends_at_risk == 3
    assert len([r for r in caplog.records if "not durable" in r.getMessage()]) == 1


def test_blank_accept_loss_is_not_an_acceptance(
    plain_client: redis.Redis, plain_stream: str
) -> None:
    with pytest.raises(ConfigurationError, match="who accepted"):
        RedisStreamJournal(plain_client, plain_stream, accept_loss="  ")


@pytest.mark.parametrize(("fsync", "loss"), [("everysec", LOSS_EVERYSEC), ("no", LOSS_FSYNC_NO)])
def test_weaker_fsync_is_refused(durable_redis: RedisServer, fsync: str, loss: str) -> None:
    durable_redis.execute("CONFIG", "SET", "appendfsync", fsync)
    try:
        with durable_redis.client() as client:
            with pytest.raises(ConfigurationError) as caught:
                RedisStreamJournal(client, unique_stream())
            assert loss in str(caught.value)
            accepted = RedisStreamJournal(client, unique_stream(), accept_loss="test: on purpose")
            assert accepted.durability == loss
    finally:
        durable_redis.execute("CONFIG", "SET", "appendfsync", "always")


def test_disabled_config_is_not_provably_durable(write_behind_root: Path) -> None:
    server = RedisServer(
        write_behind_root,
        name="no-config",
        args=["--appendonly", "yes", "--appendfsync", "always", "--rename-command", "CONFIG", ""],
    )
    try:
        server.start()
        with server.client() as client:
            with pytest.raises(ConfigurationError) as caught:
                RedisStreamJournal(client, unique_stream())
            assert LOSS_NO_CONFIG in str(caught.value)
    finally:
        server.close()


def test_wait_replicas_is_durable_and_a_shortfall_is_not_acknowledged(
    write_behind_root: Path,
) -> None:
    pair = ReplicaPair(write_behind_root, name="wb-pair")  # both without AOF
    try:
        pair.start()  # returns once the primary counts its replica online (see _synced)
        with pair.primary.client() as client:
            stream = unique_stream()
            journal = RedisStreamJournal(client, stream, wait_replicas=1)
            assert journal.durable
            record = journal.append("ns", "k", None, 1)
            with pair.replica.client() as replica:
                # WAIT returned, so the replica has the entry now, not eventually.
                assert replica.xlen(stream) == 1

            greedy = RedisStreamJournal(client, stream, wait_replicas=2, wait_timeout=0.1)
            with pytest.raises(StoreError, match="only 1 of 2 replica"):
                greedy.append("ns", "k", None, 2)
            (claimed, _) = journal.claim("f1", 10, 30.0)
            assert claimed.sequence == record.sequence
    finally:
        pair.close()


def test_bytes_replies_work_as_well(durable_redis: RedisServer) -> None:
    with durable_redis.client(decode_responses=False) as client:
        journal = RedisStreamJournal(client, unique_stream())
        written = journal.append("ns", ("k", b"\xff"), {"u": 1}, {"v": [1, 2]})
        (claimed,) = journal.claim("f1", 10, 30.0)
        assert (claimed.key, claimed.scope, claimed.value, claimed.sequence) == (
            ("k", b"\xff"),
            {"u": 1},
            {"v": [1, 2]},
            written.sequence,
        )
        assert journal.retry_later(claimed, 0.0, "x")
        (again,) = journal.claim("f1", 10, 0.0)
        assert journal.dead_letter(again, "boom")
        assert [(d.record.sequence, d.error) for d in journal.dead_letters()] == [
            (written.sequence, "boom")
        ]
        assert (journal.depth(), journal.lag()) == (0, 0.0)


def test_a_deleted_stream_gets_its_group_back(durable_client: redis.Redis) -> None:
    stream = unique_stream()
    journal = RedisStreamJournal(durable_client, stream)
    durable_client.delete(stream)
    assert journal.claim("f1", 10, 30.0) == []  # NOGROUP: the group is recreated
    journal.append("ns", "k", None, 1)
    assert [record.value for record in journal.claim("f1", 10, 30.0)] == [1]


def test_an_entry_deleted_outside_the_journal_is_counted_once_and_blocks_nothing(
    durable_client: redis.Redis,
) -> None:
    journal = RedisStreamJournal(durable_client, unique_stream())
    older = journal.append("ns", "k", None, 1)
    newer = journal.append("ns", "k", None, 2)
    assert len(journal.claim("f1", 10, 0.1)) == 2
    stream_id = "-".join(str(int(part)) for part in newer.sequence.split("-"))
    durable_client.xdel(journal.stream, stream_id)  # by hand, behind the journal's back
    time.sleep(0.2)  # the lease lapses

    (taken,) = journal.claim("f2", 10, 0.1)

    assert (taken.sequence, taken.recovered) == (older.sequence, True)
    assert journal.lost_entries == 1
    assert journal.complete(taken) == 0
    assert journal.depth() == 0
    assert journal.claim("f2", 10, 0.0) == []
    assert journal.lost_entries == 1
