"""Redis topologies for every test: servers this session starts and stops (never the machine's).

Registered by ``tests/conftest.py`` (``pytest_plugins``), so the generated twins in
``tests/_async`` and ``tests/_sync`` get them as well as ``tests/redis``. Each topology (a
killable standalone server, a 3-primary cluster, a primary with a replica, Sentinel) is
started once per session, on its own free loopback ports, and stopped at the end of the
session even when tests fail. Tests get a function-scoped view of it that first repairs
whatever an earlier fault test broke (restarting killed servers, waiting for the topology to
settle) and empties the data, so that tests may kill, pause and fail over freely and in any
order. The plain, never-killed server is ``redis_url`` in ``tests/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis_servers import (
    RedisClusterProcesses,
    RedisServer,
    ReplicaPair,
    SentinelGroup,
)


@pytest.fixture(scope="session")
def redis_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the started servers keep their logs and cluster/sentinel config files."""
    return tmp_path_factory.mktemp("redis")


# --- a standalone server of our own, which fault tests may kill -------------------------------


@pytest.fixture(scope="session")
def redis_server_session(redis_root: Path) -> Iterator[RedisServer]:
    server = RedisServer(redis_root, name="standalone")
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_server(redis_server_session: RedisServer) -> RedisServer:
    """A running, empty standalone server that this test may stop, kill, pause or restart."""
    redis_server_session.start()  # no-op unless an earlier test left it stopped
    redis_server_session.execute("FLUSHALL")
    return redis_server_session


# --- cluster ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_cluster_session(redis_root: Path) -> Iterator[RedisClusterProcesses]:
    cluster = RedisClusterProcesses(redis_root, masters=3)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def redis_cluster(redis_cluster_session: RedisClusterProcesses) -> RedisClusterProcesses:
    """A healthy, empty cluster: 3 primaries, each with one replica, all nodes agreeing."""
    redis_cluster_session.heal()
    redis_cluster_session.flush()
    return redis_cluster_session


# --- primary + replica ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_replicated_session(redis_root: Path) -> Iterator[ReplicaPair]:
    pair = ReplicaPair(redis_root)
    try:
        pair.start()
        yield pair
    finally:
        pair.close()


@pytest.fixture
def redis_replicated(redis_replicated_session: ReplicaPair) -> ReplicaPair:
    """A primary and its in-sync replica, empty. Roles never swap here (no Sentinel watches)."""
    redis_replicated_session.heal()
    redis_replicated_session.primary.execute("FLUSHALL")
    redis_replicated_session.wait_synced()
    return redis_replicated_session


# --- Sentinel ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_sentinel_session(redis_root: Path) -> Iterator[SentinelGroup]:
    group = SentinelGroup(redis_root, count=3, service_name="steady")
    try:
        group.start()
        yield group
    finally:
        group.close()


@pytest.fixture
def redis_sentinel(redis_sentinel_session: SentinelGroup) -> SentinelGroup:
    """Three sentinels agreeing on one primary (with its replica) for service "steady", empty.

    Use ``.addresses`` and ``.service_name`` with ``redis.sentinel.Sentinel``; which server is
    primary may differ from test to test, since tests may fail it over.
    """
    redis_sentinel_session.heal()
    redis_sentinel_session.primary().execute("FLUSHALL")
    return redis_sentinel_session
