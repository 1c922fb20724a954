"""The Redis fixtures themselves: every topology serves redis-py, and every fault helper bites.

These pin down the ground the Redis store's tests stand on: if one of these fails, a store test
failing next to it says nothing about the store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster
from redis.sentinel import Sentinel

from tests.redis_servers import (
    HOST,
    MACHINE_REDIS_PORT,
    RedisClusterProcesses,
    RedisProcessError,
    RedisServer,
    ReplicaPair,
    SentinelGroup,
    debug_sleep,
    lease_port,
    pause,
)


def cluster_client(cluster: RedisClusterProcesses) -> RedisCluster:
    # One node is enough: the client discovers the others from it, as an application's would.
    return RedisCluster(
        host=HOST, port=cluster.nodes[0].port, decode_responses=True, socket_timeout=2.0
    )


# redis-py's sentinel module is unannotated; these wrappers keep the ignores in one place.


def sentinel_client(group: SentinelGroup) -> Sentinel:
    return Sentinel(  # type: ignore[no-untyped-call]
        group.addresses, socket_timeout=1.0, decode_responses=True
    )


def sentinel_primary(sentinel: Sentinel, group: SentinelGroup) -> redis.Redis:
    client: redis.Redis = sentinel.master_for(group.service_name)  # type: ignore[no-untyped-call]
    return client


def sentinel_replica(sentinel: Sentinel, group: SentinelGroup) -> redis.Redis:
    client: redis.Redis = sentinel.slave_for(group.service_name)  # type: ignore[no-untyped-call]
    return client


def close_sentinel(sentinel: Sentinel) -> None:
    # Sentinel has no close(); its per-sentinel clients hold the connections.
    for conn in sentinel.sentinels:
        conn.close()


# --- standalone -------------------------------------------------------------------------------


def test_standalone_url_is_a_server_of_our_own_never_the_machine_redis(
    standalone_url: str,
) -> None:
    assert not standalone_url.endswith(f":{MACHINE_REDIS_PORT}")
    with redis.Redis.from_url(standalone_url, decode_responses=True) as conn:
        assert conn.dbsize() == 0  # flushed for this test: it is ours to flush
        conn.set("steady:k", "v")
        assert conn.get("steady:k") == "v"


def test_started_server_serves_on_its_own_loopback_port(redis_server: RedisServer) -> None:
    assert redis_server.port != MACHINE_REDIS_PORT
    assert redis_server.url == f"redis://{HOST}:{redis_server.port}"
    with redis.Redis.from_url(redis_server.url, decode_responses=True) as conn:
        conn.set("k", "v")
        assert conn.get("k") == "v"
        config = conn.config_get("bind")
        assert config["bind"] == HOST
        assert conn.config_get("save")["save"] == ""  # nothing kept on disk


def test_kill_under_load_then_restart_on_the_same_port(redis_server: RedisServer) -> None:
    ok_before, errors, ok_after = [0], [0], [0]
    killed, stop = threading.Event(), threading.Event()

    def load() -> None:
        # retry=None: every failure must surface here, not be hidden by redis-py's retries.
        with redis.Redis.from_url(redis_server.url, socket_timeout=1.0, retry=None) as conn:
            index = 0
            while not stop.is_set():
                index += 1
                try:
                    conn.set(f"load:{index}", index)
                except redis.ConnectionError:
                    errors[0] += 1
                    time.sleep(0.005)
                    continue
                (ok_after if killed.is_set() and errors[0] else ok_before)[0] += 1

    worker = threading.Thread(target=load)
    worker.start()
    try:
        wait_for(lambda: ok_before[0] >= 200, "load to start")
        old_pid, port = redis_server.pid, redis_server.port
        redis_server.kill()
        killed.set()
        wait_for(lambda: errors[0] > 0, "the load to see the crash")
        redis_server.start()
        wait_for(lambda: ok_after[0] >= 50, "the load to resume on the restarted server")
    finally:
        stop.set()
        worker.join()
    assert redis_server.port == port
    assert redis_server.pid != old_pid
    with redis_server.client() as conn:
        assert conn.get("load:1") is None  # nothing persisted: the restart came back empty


def test_client_pause_times_out_a_command(redis_server: RedisServer) -> None:
    with redis_server.client(socket_timeout=0.1, retry=None) as conn:
        conn.ping()  # connect (and its handshake commands) before the pause
        pause(redis_server, 500)
        started = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            conn.get("k")
        assert time.monotonic() - started < 0.4
        wait_for(lambda: _answers(conn), "the pause to end")


def test_debug_sleep_freezes_the_server(redis_server: RedisServer) -> None:
    with redis_server.client(socket_timeout=0.1, retry=None) as conn:
        conn.ping()
        with debug_sleep(redis_server, 0.5), pytest.raises(redis.TimeoutError):
            conn.get("k")
        assert conn.ping()


# --- cluster ----------------------------------------------------------------------------------


def test_cluster_spreads_keys_over_three_masters(redis_cluster: RedisClusterProcesses) -> None:
    masters = redis_cluster.masters()
    assert len(masters) == 3
    assert len(redis_cluster.nodes) == 6
    with cluster_client(redis_cluster) as client:
        for index in range(60):
            client.set(f"key:{index}", index)
        assert client.get("key:7") == "7"
    sizes = [master.execute("DBSIZE") for master in masters]
    assert sum(sizes) == 60
    assert all(size > 0 for size in sizes), sizes


def test_graceful_cluster_failover_promotes_the_replica(
    redis_cluster: RedisClusterProcesses,
) -> None:
    with cluster_client(redis_cluster) as client:
        for index in range(30):
            client.set(f"key:{index}", index)
        old_master = redis_cluster.masters()[0]
        old_master.execute("WAIT", 1, 1000)  # the replica has every write before the hand-over
        promoted = redis_cluster.failover(old_master)
        assert promoted in redis_cluster.masters()
        assert old_master not in redis_cluster.masters()
        assert redis_cluster.replica_of(promoted) is old_master
        # The client follows the MOVED redirects to the new primary and loses nothing.
        assert [client.get(f"key:{index}") for index in range(30)] == [str(i) for i in range(30)]
        client.set("after", "yes")
        assert client.get("after") == "yes"


def test_killed_cluster_primary_is_replaced(redis_cluster: RedisClusterProcesses) -> None:
    victim = redis_cluster.masters()[1]
    promoted = redis_cluster.failover(victim, kill=True)
    assert promoted in redis_cluster.masters()
    assert victim.running  # restarted by the helper, and back as the replica
    assert redis_cluster.replica_of(promoted) is victim
    with cluster_client(redis_cluster) as client:
        for index in range(30):
            client.set(f"key:{index}", index)
        assert client.get("key:29") == "29"


# --- primary + replica ------------------------------------------------------------------------


def test_replica_receives_a_write(redis_replicated: ReplicaPair) -> None:
    with redis_replicated.primary.client() as primary, redis_replicated.replica.client() as replica:
        primary.set("k", "v")
        assert primary.execute_command("WAIT", 1, 1000) == 1
        assert replica.get("k") == "v"
        with pytest.raises(redis.ReadOnlyError):
            replica.set("k", "other")


# --- Sentinel ---------------------------------------------------------------------------------


def test_sentinel_serves_the_primary_and_replica(redis_sentinel: SentinelGroup) -> None:
    assert len(redis_sentinel.addresses) == 3
    sentinel = sentinel_client(redis_sentinel)
    try:
        with sentinel_primary(sentinel, redis_sentinel) as primary:
            primary.set("k", "v")
            assert primary.execute_command("WAIT", 1, 1000) == 1
            assert primary.info("server")["tcp_port"] == redis_sentinel.primary().port
        with sentinel_replica(sentinel, redis_sentinel) as replica:
            assert replica.get("k") == "v"
            assert replica.info("replication")["role"] == "slave"
    finally:
        close_sentinel(sentinel)


def test_sentinel_failover_moves_the_primary(redis_sentinel: SentinelGroup) -> None:
    old = redis_sentinel.primary()
    with old.client() as conn:
        conn.set("k", "v")
        assert conn.execute_command("WAIT", 1, 1000) == 1
    new = redis_sentinel.failover()
    assert new is not old
    sentinel = sentinel_client(redis_sentinel)
    try:
        with sentinel_primary(sentinel, redis_sentinel) as primary:
            assert primary.get("k") == "v"
            assert primary.info("server")["tcp_port"] == new.port
    finally:
        close_sentinel(sentinel)


def test_sentinel_replaces_a_killed_primary(redis_sentinel: SentinelGroup) -> None:
    old = redis_sentinel.primary()
    old.kill()
    # Sentinel notices after down-after-milliseconds (1 s) and promotes the replica by itself.
    replica = next(server for server in redis_sentinel.servers if server is not old)

    def promoted() -> bool:
        # Every sentinel names the replica, and the replica has taken the role: healing
        # before the failover has finished could bring the old primary back as primary.
        named = {
            int(
                sentinel.execute(
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", redis_sentinel.service_name
                )[1]
            )
            for sentinel in redis_sentinel.sentinels
        }
        return named == {replica.port} and replica.info("replication")["role"] == "master"

    wait_for(promoted, "Sentinel to fail over", 20)
    redis_sentinel.heal()  # the old primary comes back, as a replica
    assert redis_sentinel.primary() is not old
    assert old.info("replication")["role"] == "slave"


# --- the process manager ----------------------------------------------------------------------


def test_closed_server_leaves_no_process_and_frees_its_port(redis_root: Path) -> None:
    server = RedisServer(redis_root, name="throwaway")
    server.start()
    pid, port = server.pid, server.port
    assert pid is not None
    server.close()
    assert not server.running
    assert not Path(f"/proc/{pid}").exists()
    lease = lease_port()  # the port is leasable again (not necessarily picked: ports are random)
    lease.release()
    assert port != MACHINE_REDIS_PORT


def test_a_server_that_cannot_start_fails_with_its_log(redis_root: Path) -> None:
    server = RedisServer(redis_root, name="broken", args=["--no-such-option", "1"])
    with pytest.raises(RedisProcessError, match="no-such-option"):
        server.start()
    server.close()


# --- helpers ----------------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def _answers(conn: redis.Redis) -> bool:
    try:
        return bool(conn.ping())
    except redis.TimeoutError:
        return False
