"""The Redis store passes the same contract as the memory store, on every topology."""

from __future__ import annotations

import time

import pytest

from steadycache import ConfigurationError, Entry, StoreError
from steadycache.codecs import JsonCodec
from steadycache.stores.base import Store
from steadycache.stores.redis import RedisStore
from steadycache.stores.redis_backend import RedisBackend
from tests.conftest import ManualClock
from tests.redis.helpers import cluster_url, configure_as_cache
from tests.redis_servers import RedisClusterProcesses, ReplicaPair
from tests.stores.conformance import StoreConformance, make_entry


class RedisConformance(StoreConformance):
    scale = 0.05  # a 10 s TTL in the contract becomes 0.5 s of the server's own clock
    real_time = True
    url: str

    @pytest.fixture(autouse=True)
    def _backend(self, request: pytest.FixtureRequest) -> None:
        self.url = request.getfixturevalue(self.url_fixture)

    url_fixture = "standalone_url"

    def make_store(self, clock: ManualClock) -> Store:
        return RedisStore(RedisBackend(self.url), JsonCodec(), namespace="ns")


class TestStandalone(RedisConformance):
    url_fixture = "standalone_url"


class TestCluster(RedisConformance):
    @pytest.fixture(autouse=True)
    def _backend(self, redis_cluster: RedisClusterProcesses) -> None:
        self.url = cluster_url(redis_cluster)


class TestReplicated(RedisConformance):
    @pytest.fixture(autouse=True)
    def _backend(self, redis_replicated: ReplicaPair) -> None:
        self.url = redis_replicated.primary.url


def entry(value: object, version: int, ttl: float = 30.0) -> Entry:
    now = time.time()
    return Entry(
        value, stored_at=now, fresh_until=now + ttl, stale_until=now + ttl, version=version
    )


def test_entries_carry_the_servers_ttl(standalone_url: str) -> None:
    backend = RedisBackend(standalone_url)
    store = RedisStore(backend, JsonCodec(), namespace="k")
    store.set("k:g0:sa", entry(1, 1, ttl=30))
    ttl_ms = backend.client.pttl(backend.redis_key("k:g0:sa"))
    assert 29_000 < ttl_ms <= 30_000


def test_an_older_write_never_overwrites_a_newer_one(standalone_url: str) -> None:
    store = RedisStore(RedisBackend(standalone_url), JsonCodec(), namespace="k")
    store.set("k:g0:sa", entry("new", version=200))
    store.set("k:g0:sa", entry("old", version=100))
    found = store.get("k:g0:sa")
    assert found is not None
    assert found.value == "new"
    assert store.older_writes_rejected == 1
    store.set("k:g0:sa", entry("newer", version=300))
    assert store.get("k:g0:sa").value == "newer"  # type: ignore[union-attr]


def test_a_load_that_began_before_a_delete_cannot_write_back(standalone_url: str) -> None:
    store = RedisStore(RedisBackend(standalone_url), JsonCodec(), namespace="k")
    token = store.acquire_lease("k:g0:sa", ttl=5)
    assert token is not None
    assert store.acquire_lease("k:g0:sa", ttl=5) is None  # one holder at a time
    store.delete("k:g0:sa")  # invalidation while the load runs
    assert store.set_leased("k:g0:sa", entry("pre-delete value", 1), token) is False
    assert store.get("k:g0:sa") is None
    assert store.stale_sets_rejected == 1


def test_lease_release_is_compare_and_delete(standalone_url: str) -> None:
    store = RedisStore(RedisBackend(standalone_url), JsonCodec(), namespace="k")
    token = store.acquire_lease("k:g0:sa", ttl=0.2)
    assert token is not None
    time.sleep(0.3)  # a crashed holder's lease expires
    second = store.acquire_lease("k:g0:sa", ttl=5)
    assert second is not None
    store.release_lease("k:g0:sa", token)  # the old holder must not release the new lease
    assert store.lease_held("k:g0:sa")
    store.release_lease("k:g0:sa", second)
    assert not store.lease_held("k:g0:sa")


def test_garbled_entry_is_a_miss_and_counted(standalone_url: str) -> None:
    backend = RedisBackend(standalone_url)
    store = RedisStore(backend, JsonCodec(), namespace="k")
    backend.client.set(backend.redis_key("k:g0:sa"), b"\x80\x04\x95 not ours")
    assert store.get("k:g0:sa") is None
    assert store.stats().garbled == 1


def test_wait_for_replica_acknowledgement(redis_replicated: ReplicaPair) -> None:
    store = RedisStore(
        RedisBackend(redis_replicated.primary.url),
        JsonCodec(),
        namespace="k",
        wait_replicas=1,
        wait_timeout=1.0,
    )
    store.set("k:g0:sa", entry(1, 1))
    assert store.replication_shortfalls == 0
    assert redis_replicated.replica.execute("EXISTS", store.backend.redis_key("k:g0:sa")) == 1


def test_wait_shortfall_is_counted(standalone_url: str) -> None:
    store = RedisStore(
        RedisBackend(standalone_url), JsonCodec(), namespace="k", wait_replicas=1, wait_timeout=0.05
    )
    store.set("k:g0:sa", entry(1, 1))  # the machine's Redis has no replica
    assert store.replication_shortfalls == 1


def test_noeviction_server_is_refused_unless_accepted(standalone_url: str) -> None:
    backend = RedisBackend(standalone_url)
    policy = backend.client.config_get("maxmemory-policy")["maxmemory-policy"]
    if policy == "noeviction":
        with pytest.raises(ConfigurationError, match="noeviction"):
            backend.check_server(accept_noeviction=False)
    report = backend.check_server(accept_noeviction=True)
    assert report.readable
    assert report.maxmemory_policy == policy


def test_eviction_policy_read_from_a_cache_server(redis_replicated: ReplicaPair) -> None:
    configure_as_cache(redis_replicated.primary)
    report = RedisBackend(redis_replicated.primary.url).check_server(accept_noeviction=False)
    assert report.maxmemory_policy == "allkeys-lru"
    assert report.maxmemory == 256 * 1024 * 1024


def test_config_forbidden_by_acl_is_reported_and_tolerated(standalone_url: str) -> None:
    admin = RedisBackend(standalone_url).client
    admin.acl_setuser(
        "sc_limited",
        enabled=True,
        passwords=["+pw"],
        keys=["*"],
        channels=["*"],
        commands=["+@all", "-config"],
    )
    try:
        url = standalone_url.replace("redis://", "redis://sc_limited:pw@", 1)
        report = RedisBackend(url).check_server(accept_noeviction=False)
        assert not report.readable
        assert "ACL" in report.note
    finally:
        admin.acl_deluser("sc_limited")


def test_server_metrics(standalone_url: str) -> None:
    stats = RedisBackend(standalone_url).server_stats()
    assert stats["used_memory"] > 0
    assert "evicted_keys" in stats


def test_unreachable_server_fails_fast_with_store_error() -> None:
    backend = RedisBackend("redis://127.0.0.1:1/0", breaker_failures=2)
    store = RedisStore(backend, JsonCodec(), namespace="k")
    for _ in range(2):
        with pytest.raises(StoreError, match="failed"):
            store.get("k:g0:sa")
    started = time.monotonic()
    with pytest.raises(StoreError, match="circuit breaker open"):
        store.get("k:g0:sa")
    assert time.monotonic() - started < 0.01
    assert backend.errors == 2


def test_bad_urls_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="scheme"):
        RedisBackend("http://127.0.0.1:6379")
    with pytest.raises(ConfigurationError, match="service name"):
        RedisBackend("redis+sentinel://127.0.0.1:26379")
    with pytest.raises(ConfigurationError, match="exactly one"):
        RedisBackend()


def test_unused_helper_is_importable() -> None:
    assert make_entry(1, 0.0).value == 1
