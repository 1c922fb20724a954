"""The Redis store passes the same contract as the memory store, on every topology."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from steadycache import AsyncRedisBackend, AsyncStore, ConfigurationError, Entry, StoreError
from steadycache.codecs import JsonCodec
from steadycache.stores.redis_async import AsyncRedisStore
from steadycache.stores.redis_backend import redis_key
from tests._async.conformance import StoreConformance, make_entry
from tests.conftest import ManualClock
from tests.redis.helpers import (
    cluster_url,
    configure_as_cache,
)
from tests.redis_servers import RedisClusterProcesses, ReplicaPair

#: Opens a backend that the test's teardown closes.
Backends = Callable[..., AsyncRedisBackend]


class RedisConformance(StoreConformance):
    scale = 0.05  # a 10 s TTL in the contract becomes 0.5 s of the server's own clock
    real_time = True
    url: str
    backend: AsyncRedisBackend

    @pytest.fixture(autouse=True)
    def _backend(self, request: pytest.FixtureRequest) -> None:
        self.url = request.getfixturevalue(self.url_fixture)

    url_fixture = "redis_url"

    def make_store(self, clock: ManualClock) -> AsyncStore:
        self.backend = AsyncRedisBackend(self.url)
        return AsyncRedisStore(self.backend, JsonCodec(), namespace="ns")

    async def release(self, store: AsyncStore) -> None:
        await self.backend.aclose()  # the store's own close() leaves the backend's to it


class TestStandalone(RedisConformance):
    url_fixture = "redis_url"


class TestCluster(RedisConformance):
    @pytest.fixture(autouse=True)
    def _backend(self, redis_cluster: RedisClusterProcesses) -> None:
        self.url = cluster_url(redis_cluster)


class TestReplicated(RedisConformance):
    @pytest.fixture(autouse=True)
    def _backend(self, redis_replicated: ReplicaPair) -> None:
        self.url = redis_replicated.primary.url


@pytest.fixture
async def backends() -> AsyncIterator[Backends]:
    opened: list[AsyncRedisBackend] = []

    def open_backend(*args: object, **options: object) -> AsyncRedisBackend:
        backend = AsyncRedisBackend(*args, **options)  # type: ignore[arg-type]
        opened.append(backend)
        return backend

    yield open_backend
    for backend in opened:
        await backend.aclose()


def entry(value: object, version: int, ttl: float = 30.0) -> Entry:
    now = time.time()
    return Entry(
        value, stored_at=now, fresh_until=now + ttl, stale_until=now + ttl, version=version
    )


async def test_the_contract_in_one_pass(redis_url: str, backends: Backends) -> None:
    store = AsyncRedisStore(backends(redis_url), JsonCodec(), namespace="ns")
    assert await store.get("ns:g0:sa") is None
    await store.set("ns:g0:sa", entry({"a": 1}, version=5))
    found = await store.get("ns:g0:sa")
    assert found is not None
    assert found.value == {"a": 1}
    await store.set("ns:g0:sa", entry("older", version=1))
    assert (await store.get("ns:g0:sa")).value == {"a": 1}  # type: ignore[union-attr]
    await store.set_many({"ns:g0:sb": entry(2, 1), "ns:g0:sc": entry(3, 1)})
    values = [e.value if e else None for e in await store.get_many(["ns:g0:sb", "x", "ns:g0:sc"])]
    assert values == [2, None, 3]
    assert await store.delete("ns:g0:sb")
    token = await store.acquire_lease("ns:g0:sd", 5)
    assert token is not None
    assert await store.acquire_lease("ns:g0:sd", 5) is None
    await store.delete("ns:g0:sd")
    assert await store.set_leased("ns:g0:sd", entry(1, 1), token) is False
    await store.clear()
    assert await store.get("ns:g0:sa") is None


async def test_entries_carry_the_servers_ttl(redis_url: str, backends: Backends) -> None:
    backend = backends(redis_url)
    store = AsyncRedisStore(backend, JsonCodec(), namespace="k")
    await store.set("k:g0:sa", entry(1, 1, ttl=30))
    ttl_ms = await backend.client.pttl(redis_key(backend.key_prefix, "k:g0:sa"))
    assert 29_000 < ttl_ms <= 30_000


async def test_an_older_write_never_overwrites_a_newer_one(
    redis_url: str, backends: Backends
) -> None:
    store = AsyncRedisStore(backends(redis_url), JsonCodec(), namespace="k")
    await store.set("k:g0:sa", entry("new", version=200))
    await store.set("k:g0:sa", entry("old", version=100))
    found = await store.get("k:g0:sa")
    assert found is not None
    assert found.value == "new"
    assert store.older_writes_rejected == 1
    await store.set("k:g0:sa", entry("newer", version=300))
    assert (await store.get("k:g0:sa")).value == "newer"  # type: ignore[union-attr]


async def test_a_load_that_began_before_a_delete_cannot_write_back(
    redis_url: str, backends: Backends
) -> None:
    store = AsyncRedisStore(backends(redis_url), JsonCodec(), namespace="k")
    token = await store.acquire_lease("k:g0:sa", ttl=5)
    assert token is not None
    assert await store.acquire_lease("k:g0:sa", ttl=5) is None  # one holder at a time
    await store.delete("k:g0:sa")  # invalidation while the load runs
    assert await store.set_leased("k:g0:sa", entry("pre-delete value", 1), token) is False
    assert await store.get("k:g0:sa") is None
    assert store.stale_sets_rejected == 1


async def test_a_cluster_client_knows_every_primary_from_its_first_command(
    redis_cluster: RedisClusterProcesses, backends: Backends
) -> None:
    # redis-py's asyncio cluster client, left to initialise on its first command, sends it
    # to a random node and then takes the MOVED reply for a failover: it marks a primary
    # a replica, and clear() (a SCAN of the primaries) missed that node's keys.
    backend = backends(cluster_url(redis_cluster))
    store = AsyncRedisStore(backend, JsonCodec(), namespace="k")
    await store.set_many({f"k:g0:s{index}": entry(index, 1) for index in range(12)})
    primaries = {node.port for node in backend.client.get_primaries()}
    assert primaries == {server.port for server in redis_cluster.masters()}
    await store.clear()
    assert await store.get_many([f"k:g0:s{index}" for index in range(12)]) == [None] * 12


async def test_lease_release_is_compare_and_delete(redis_url: str, backends: Backends) -> None:
    store = AsyncRedisStore(backends(redis_url), JsonCodec(), namespace="k")
    token = await store.acquire_lease("k:g0:sa", ttl=0.2)
    assert token is not None
    await asyncio.sleep(0.3)  # a crashed holder's lease expires
    second = await store.acquire_lease("k:g0:sa", ttl=5)
    assert second is not None
    await store.release_lease("k:g0:sa", token)  # the old holder must not release the new lease
    assert await store.lease_held("k:g0:sa")
    await store.release_lease("k:g0:sa", second)
    assert not await store.lease_held("k:g0:sa")


async def test_garbled_entry_is_a_miss_and_counted(redis_url: str, backends: Backends) -> None:
    backend = backends(redis_url)
    store = AsyncRedisStore(backend, JsonCodec(), namespace="k")
    await backend.client.set(redis_key(backend.key_prefix, "k:g0:sa"), b"\x80\x04\x95 not ours")
    assert await store.get("k:g0:sa") is None
    assert store.stats().garbled == 1


async def test_wait_for_replica_acknowledgement(
    redis_replicated: ReplicaPair, backends: Backends
) -> None:
    store = AsyncRedisStore(
        backends(redis_replicated.primary.url),
        JsonCodec(),
        namespace="k",
        wait_replicas=1,
        wait_timeout=1.0,
    )
    await store.set("k:g0:sa", entry(1, 1))
    assert store.replication_shortfalls == 0
    stored = redis_key(store.backend.key_prefix, "k:g0:sa")
    assert redis_replicated.replica.execute("EXISTS", stored) == 1


async def test_wait_shortfall_is_counted(redis_url: str, backends: Backends) -> None:
    store = AsyncRedisStore(
        backends(redis_url), JsonCodec(), namespace="k", wait_replicas=1, wait_timeout=0.05
    )
    await store.set("k:g0:sa", entry(1, 1))  # this session's plain Redis has no replica
    assert store.replication_shortfalls == 1


async def test_noeviction_server_is_refused_unless_accepted(
    redis_url: str, backends: Backends
) -> None:
    backend = backends(redis_url)
    policy = (await backend.client.config_get("maxmemory-policy"))["maxmemory-policy"]
    if policy == "noeviction":
        with pytest.raises(ConfigurationError, match="noeviction"):
            await backend.check_server(accept_noeviction=False)
    report = await backend.check_server(accept_noeviction=True)
    assert report.readable
    assert report.maxmemory_policy == policy


async def test_eviction_policy_read_from_a_cache_server(
    redis_replicated: ReplicaPair, backends: Backends
) -> None:
    configure_as_cache(redis_replicated.primary)
    backend = backends(redis_replicated.primary.url)
    report = await backend.check_server(accept_noeviction=False)
    assert report.maxmemory_policy == "allkeys-lru"
    assert report.maxmemory == 256 * 1024 * 1024


async def test_config_forbidden_by_acl_is_reported_and_tolerated(
    redis_url: str, backends: Backends
) -> None:
    admin = backends(redis_url).client
    await admin.acl_setuser(
        "sc_limited",
        enabled=True,
        passwords=["+pw"],
        keys=["*"],
        channels=["*"],
        commands=["+@all", "-config"],
    )
    try:
        url = redis_url.replace("redis://", "redis://sc_limited:pw@", 1)
        report = await backends(url).check_server(accept_noeviction=False)
        assert not report.readable
        assert "ACL" in report.note
    finally:
        await admin.acl_deluser("sc_limited")


async def test_server_metrics(redis_url: str, backends: Backends) -> None:
    stats = await backends(redis_url).server_stats()
    assert stats["used_memory"] > 0
    assert "evicted_keys" in stats


async def test_unreachable_server_fails_fast_with_store_error(backends: Backends) -> None:
    backend = backends("redis://127.0.0.1:1/0", breaker_failures=2)
    store = AsyncRedisStore(backend, JsonCodec(), namespace="k")
    for _ in range(2):
        with pytest.raises(StoreError, match="failed"):
            await store.get("k:g0:sa")
    started = time.monotonic()
    with pytest.raises(StoreError, match="circuit breaker open"):
        await store.get("k:g0:sa")
    assert time.monotonic() - started < 0.01
    assert backend.errors == 2


async def test_bad_urls_are_configuration_errors() -> None:
    # Refused while parsing: nothing connects to these addresses.
    with pytest.raises(ConfigurationError, match="scheme"):
        AsyncRedisBackend("http://127.0.0.1:6379")
    with pytest.raises(ConfigurationError, match="service name"):
        AsyncRedisBackend("redis+sentinel://127.0.0.1:26379")
    with pytest.raises(ConfigurationError, match="exactly one"):
        AsyncRedisBackend()


async def test_unused_helper_is_importable() -> None:
    assert make_entry(1, 0.0).value == 1
