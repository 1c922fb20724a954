"""Two tiers across "processes" (two Caches with their own connections and backplanes)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from steadycache import (
    Cache,
    ConfigurationError,
    LoaderError,
    Policy,
    RedisBackend,
    StaleIfError,
    Stampede,
    Ttl,
)
from steadycache.policy import SharedTiers
from tests.redis.helpers import cache_on, cluster_url, shared_policy
from tests.redis_servers import RedisClusterProcesses


def wait_for(condition: Callable[[], bool], timeout: float = 2.0) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError("condition not met in time")
        time.sleep(0.002)
    return time.monotonic() - started


@pytest.fixture
def two_processes(standalone_url: str) -> Iterator[tuple[Cache, Cache]]:
    first, second = cache_on(standalone_url), cache_on(standalone_url)
    yield first, second
    first.close()
    second.close()


def test_shared_tiers_need_redis() -> None:
    with Cache() as cache, pytest.raises(ConfigurationError, match="no Redis"):
        cache.namespace("x", Policy(consistency=SharedTiers()))


def test_a_write_in_one_process_is_read_by_another(two_processes: tuple[Cache, Cache]) -> None:
    first, second = two_processes
    a = first.namespace("seats", shared_policy())
    b = second.namespace("seats", shared_policy())
    a.set(("w", 1), {"free": 3})
    assert b.get(("w", 1)) == {"free": 3}
    l1, l2 = b.stats().tiers
    assert (l1.tier, l2.tier) == ("memory", "redis")
    assert l2.hits == 1


def test_backplane_evicts_stale_l1_copies_within_milliseconds(
    two_processes: tuple[Cache, Cache],
) -> None:
    first, second = two_processes
    a = first.namespace("seats", shared_policy())
    b = second.namespace("seats", shared_policy())
    for cache in (first, second):
        assert cache._redis is not None
        assert cache._redis.backplane().wait_subscribed(2.0)
    a.set("k", 1)
    assert b.get("k") == 1  # now in b's L1
    a.set("k", 2)
    elapsed = wait_for(lambda: b.get("k") == 2)
    assert elapsed < 0.5
    a.delete("k")
    wait_for(lambda: b.get("k") is None)


def test_l1_copy_lifetime_is_capped(two_processes: tuple[Cache, Cache]) -> None:
    first, _ = two_processes
    ns = first.namespace("capped", shared_policy(l1_max_age=0.2))
    ns.set("k", 1)
    stored = ns.store.shared.get(ns.stored_key("k"))  # type: ignore[attr-defined]
    local = ns.store.local.get(ns.stored_key("k"))  # type: ignore[attr-defined]
    assert stored is not None
    assert local is not None
    assert local.stale_until - time.time() <= 0.2
    assert stored.stale_until - time.time() > 50
    assert local.fresh_until == stored.fresh_until  # early refresh still sees the real expiry


def test_fleet_wide_single_flight_with_leases(standalone_url: str) -> None:
    caches = [cache_on(standalone_url) for _ in range(3)]
    try:
        namespaces = [c.namespace("hot", shared_policy()) for c in caches]
        calls = 0
        lock = threading.Lock()

        def load() -> str:
            nonlocal calls
            with lock:
                calls += 1
            time.sleep(0.1)
            return "value"

        barrier = threading.Barrier(60)
        results: list[object] = []

        def request(index: int) -> None:
            barrier.wait()
            results.append(namespaces[index % 3].get_or_load("key", load))

        threads = [threading.Thread(target=request, args=(i,)) for i in range(60)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == ["value"] * 60
        assert calls == 1
        assert sum(ns.stats().lease_waits for ns in namespaces) > 0
    finally:
        for cache in caches:
            cache.close()


def test_a_crashed_lease_holder_is_taken_over(standalone_url: str) -> None:
    with cache_on(standalone_url) as cache:
        ns = cache.namespace("hot", shared_policy(lease_ttl=0.2))
        stored = ns.stored_key("key")
        assert ns.store.acquire_lease(stored, 0.2) is not None  # type: ignore[attr-defined]
        started = time.monotonic()
        assert ns.get_or_load("key", lambda: "recovered") == "recovered"
        assert time.monotonic() - started < 1.0


def test_invalidation_during_a_load_is_not_undone(standalone_url: str) -> None:
    with cache_on(standalone_url) as writer, cache_on(standalone_url) as reader:
        r = reader.namespace("profile", shared_policy())
        w = writer.namespace("profile", shared_policy())
        loading = threading.Event()
        proceed = threading.Event()

        def slow_old_read() -> str:
            loading.set()
            proceed.wait(5)
            return "old"

        thread = threading.Thread(target=lambda: r.get_or_load("k", slow_old_read))
        thread.start()
        loading.wait(5)
        w.delete("k")  # the database changed; the writer invalidates
        proceed.set()
        thread.join()
        assert w.get("k") is None
        assert r.stats().stale_sets_rejected == 1
        assert w.get_or_load("k", lambda: "new") == "new"


def test_refresh_ahead_runs_in_one_process_only(standalone_url: str) -> None:
    from steadycache.policy import RefreshAhead

    policy = shared_policy().replace(
        invalidation=Ttl(0.4, jitter=0),
        stampede=Stampede(
            refresh_ahead=RefreshAhead(at=0.5, check_interval=0.01), early_refresh=None
        ),
    )
    caches = [cache_on(standalone_url) for _ in range(3)]
    try:
        namespaces = [c.namespace("ra", policy) for c in caches]
        loads = 0
        lock = threading.Lock()

        def load() -> int:
            nonlocal loads
            with lock:
                loads += 1
            time.sleep(0.02)
            return loads

        deadline = time.monotonic() + 1.3
        while time.monotonic() < deadline:
            for ns in namespaces:
                ns.get_or_load("k", load)
            time.sleep(0.01)
        # One load per refresh cycle across the fleet (~every 0.2 s), not one per process.
        assert loads <= 10
        assert sum(ns.stats().refreshes_skipped for ns in namespaces) > 0
    finally:
        for cache in caches:
            cache.close()


def test_cluster_two_tiers_and_leases(redis_cluster: RedisClusterProcesses) -> None:
    url = cluster_url(redis_cluster)
    with cache_on(url) as first, cache_on(url) as second:
        a = first.namespace("c", shared_policy())
        b = second.namespace("c", shared_policy())
        a.set_many({f"k{i}": i for i in range(50)})
        assert b.get_many([f"k{i}" for i in range(50)]) == list(range(50))
        assert b.get_or_load("fresh", lambda: "v") == "v"
        assert a.get("fresh") == "v"


def test_stale_if_error_still_applies_over_redis(standalone_url: str) -> None:
    policy = shared_policy().replace(
        invalidation=Ttl(0.1, jitter=0),
        stampede=Stampede(stale_if_error=StaleIfError(30), early_refresh=None),
    )
    with cache_on(standalone_url) as cache:
        ns = cache.namespace("sie", policy)
        ns.get_or_load("k", lambda: "good")
        time.sleep(0.15)

        def broken() -> str:
            raise ConnectionError("db down")

        assert ns.get_or_load("k", broken) == "good"
        ns.delete("k")
        with pytest.raises(LoaderError):
            ns.get_or_load("k", broken)


def test_server_evictions_and_memory_sit_beside_client_counters(standalone_url: str) -> None:
    with cache_on(standalone_url) as cache:
        ns = cache.namespace("m", shared_policy())
        ns.set("k", 1)
        ns.get("k")
        l1, l2 = ns.stats().tiers
        assert l2.bytes > 0
        assert l2.evictions >= 0
        assert set(l2.server_wide) == {"evictions", "expirations", "bytes"}
        assert l1.server_wide == ()


def test_shared_tiers_need_a_wall_clock(standalone_url: str) -> None:
    cache = Cache(redis=RedisBackend(standalone_url), clock=lambda: 60.0)
    with pytest.raises(ConfigurationError, match="wall time"):
        cache.namespace("x", shared_policy())
    cache.close()


def test_a_lease_won_just_after_another_process_loaded_does_not_load_again(
    standalone_url: str,
) -> None:
    with cache_on(standalone_url) as first, cache_on(standalone_url) as second:
        a = first.namespace("hot", shared_policy())
        b = second.namespace("hot", shared_policy())
        stored = b.stored_key("k")
        assert b.get("k") is None  # b decides to load: nothing there
        a.get_or_load("k", lambda: "loaded by a")  # a loads first and releases its lease
        calls = 0

        def load() -> str:
            nonlocal calls
            calls += 1
            return "loaded by b"

        # b now wins the free lease: it must find a's fresh value instead of loading again.
        assert b._load_with_lease(stored, load, None, None, ()) == "loaded by a"
        assert calls == 0
        assert not b.store.lease_held(stored)  # type: ignore[attr-defined]


def test_hot_key_snapshot_in_redis_warms_another_process(standalone_url: str) -> None:
    from steadycache.policy import HotKeyWarmUp

    policy = shared_policy().replace(warm_up=HotKeyWarmUp(top_k=3))
    with cache_on(standalone_url) as first:
        ns = first.namespace("seats", policy)
        for i in range(30):
            ns.get_or_load(("w", i % 3), lambda: 0)
    # A new process (empty L1) after the shared entries are gone: the snapshot remains.
    with cache_on(standalone_url) as second:
        ns = second.namespace("seats", policy)
        ns.invalidate_all()
        loaded: list[object] = []

        def loader_for(key: object, scope: object) -> Callable[[], object]:
            def load() -> object:
                loaded.append(key)
                return key

            return load

        report = ns.warm(loader_for=loader_for)
        assert report.loaded == 3
        assert sorted(loaded) == [("w", 0), ("w", 1), ("w", 2)]  # type: ignore[type-var]
