"""``write()`` under ``WriteBehind`` with a Redis journal: refused on a Redis that cannot
keep it, accepted on an fsynced AOF; for ``Cache`` and ``AsyncCache``.

Hand-written twins, not generated from tests/_async (where the SQLite-journal and
write-through tests are: tests/_async/test_writes.py), because the AOF-always server is this
directory's fixture.
"""

from __future__ import annotations

import pytest
import redis

from steadycache import (
    AsyncCache,
    AsyncRedisBackend,
    Cache,
    ConfigurationError,
    Policy,
    RedisBackend,
    WriteBehind,
)
from tests.redis_servers import RedisServer


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


async def test_an_async_journal_on_a_redis_that_cannot_keep_it_is_refused(redis_url: str) -> None:
    async with AsyncCache(redis=AsyncRedisBackend(redis_url)) as cache:
        accepted = cache.namespace(
            "orders2",
            Policy(
                pattern=WriteBehind(
                    journal="redis", accept_loss="payments team: replayed from the ledger"
                )
            ),
        )
        await accepted.write(("o", 1), {"total": 10})
        assert accepted.journal.depth() == 1
        assert accepted.journal.appends_at_risk == 1
        with pytest.raises(ConfigurationError, match="not durable"):
            cache.namespace("orders", Policy(pattern=WriteBehind(journal="redis")))


async def test_an_async_redis_journal_with_an_fsynced_aof_is_accepted(
    durable_redis: RedisServer,
) -> None:
    async with AsyncCache(redis=AsyncRedisBackend(durable_redis.url)) as cache:
        orders = cache.namespace("orders", Policy(pattern=WriteBehind(journal="redis")))
        await orders.write(("o", 1), {"total": 10})
        await orders.write(("o", 1), {"total": 12})
        applied: list[tuple[object, object]] = []
        report = orders.flusher(
            lambda record: applied.append((record.key, record.value)), consumer="a"
        ).run_once()
        assert report.applied == 1
        assert applied == [(("o", 1), {"total": 12})]
        assert orders.journal.depth() == 0
