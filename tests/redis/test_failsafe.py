"""Redis down, slow or failing over: the service keeps answering, every fallback counted."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from steadycache import Namespace, StoreError
from tests.redis.helpers import cache_on, cluster_url, configure_as_cache, shared_policy
from tests.redis_servers import RedisClusterProcesses, RedisServer, SentinelGroup, pause

FAST_FAILING = {
    "command_timeout": 0.1,
    "connect_timeout": 0.1,
    "breaker_failures": 3,
    "breaker_reset": 0.3,
}


class Load:
    """Threads reading 20 keys through get_or_load until stopped; records every outcome."""

    def __init__(self, ns: Namespace, threads: int = 4) -> None:
        self.ns = ns
        self.errors: list[BaseException] = []
        self.latencies: list[float] = []
        self.answers = 0
        self.loads = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(threads)]

    def _load(self, key: int) -> Callable[[], int]:
        def load() -> int:
            with self._lock:
                self.loads += 1
            return key * 10

        return load

    def _run(self, offset: int) -> None:
        i = offset
        while not self._stop.is_set():
            key = i % 20
            started = time.monotonic()
            try:
                value = self.ns.get_or_load(key, self._load(key))
                assert value == key * 10
                with self._lock:
                    self.answers += 1
            except BaseException as exc:
                with self._lock:
                    self.errors.append(exc)
            with self._lock:
                self.latencies.append(time.monotonic() - started)
            i += 1
            time.sleep(0.001)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def test_killing_redis_under_load_degrades_then_recovers(redis_server: RedisServer) -> None:
    configure_as_cache(redis_server)
    with cache_on(redis_server.url, **FAST_FAILING) as cache:
        ns = cache.namespace("avail", shared_policy(l1_max_age=0.2))
        backplane = cache._redis.backplane()  # type: ignore[union-attr]
        assert backplane.wait_subscribed(2.0)
        with Load(ns) as load:
            time.sleep(0.3)
            redis_server.kill()
            time.sleep(1.0)  # Redis is gone: answers come from L1, then from the loader
            answered_while_down = load.answers
            redis_server.restart()
            time.sleep(1.0)
        assert load.errors == []
        assert answered_while_down > 50
        assert max(load.latencies) < 1.0  # bounded timeouts and a breaker: never a hang
        tiers = ns.stats().tiers
        assert ns.store.fallbacks > 0  # type: ignore[attr-defined]
        assert tiers[1].errors > 0
        # After the restart: the backplane reconnected and flushed L1, writes reach Redis.
        assert backplane.disconnects >= 1
        assert backplane.resyncs >= 1
        ns.set("after", 1)
        backend = cache._redis
        assert backend is not None
        assert redis_server.execute("EXISTS", backend.redis_key(ns.stored_key("after"))) == 1


def test_a_paused_server_costs_a_bounded_timeout(redis_server: RedisServer) -> None:
    configure_as_cache(redis_server)
    with cache_on(redis_server.url, **FAST_FAILING) as cache:
        ns = cache.namespace("avail", shared_policy())
        ns.get_or_load("k", lambda: 1)
        pause(redis_server, 800)
        started = time.monotonic()
        assert ns.get_or_load("other", lambda: 2) == 2  # L2 times out: loader answers
        assert time.monotonic() - started < 0.6
        assert ns.get("k") == 1  # still in L1
        assert ns.store.fallbacks >= 1  # type: ignore[attr-defined]


def test_errors_can_be_asked_for(redis_server: RedisServer) -> None:
    configure_as_cache(redis_server)
    with cache_on(redis_server.url, **FAST_FAILING) as cache:
        ns = cache.namespace("strict", shared_policy(on_store_error="raise"))
        redis_server.kill()
        with pytest.raises(StoreError):
            ns.get("k")
        redis_server.restart()


def test_cluster_primary_failover_under_load(redis_cluster: RedisClusterProcesses) -> None:
    for node in redis_cluster.nodes:
        configure_as_cache(node)
    url = cluster_url(redis_cluster)
    with cache_on(url, command_timeout=0.2, connect_timeout=0.2) as cache:
        ns = cache.namespace("avail", shared_policy(l1_max_age=0.2))
        with Load(ns) as load:
            time.sleep(0.3)
            redis_cluster.failover(kill=True)
            time.sleep(0.5)
        assert load.errors == []
        assert load.answers > 100
        # The client finds the promoted primary by itself: writes reach L2 again.
        shared = ns.store.shared  # type: ignore[attr-defined]
        stored = ns.stored_key("after-failover")
        deadline = time.monotonic() + 10
        seen: list[str] = []
        while True:
            try:
                shared.set(stored, ns._core.make_entry(1))
                if shared.get(stored) is not None:
                    break
            except StoreError as error:  # still rediscovering the slots
                seen.append(repr(error.__cause__) + repr(error))
            assert time.monotonic() < deadline, f"the cluster client did not recover: {seen[-3:]}"
            time.sleep(0.1)


def test_sentinel_url(redis_sentinel: SentinelGroup) -> None:
    hosts = ",".join(f"{h}:{p}" for h, p in redis_sentinel.addresses)
    url = f"redis+sentinel://{hosts}/{redis_sentinel.service_name}"
    for server in redis_sentinel.servers:
        configure_as_cache(server)
    with cache_on(url) as first, cache_on(url) as second:
        first.namespace("s", shared_policy()).set("k", "via sentinel")
        assert second.namespace("s", shared_policy()).get("k") == "via sentinel"
