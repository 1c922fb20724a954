"""Building caches over the test servers, and the few sync/async pairs the library's APIs
still need (each says which difference it stands in for)."""

from __future__ import annotations

import redis

from steadycache import Eviction, Policy, ReadThrough, Stampede, Ttl
from steadycache.policy import SharedTiers
from tests.redis_servers import RedisClusterProcesses, RedisServer


def cluster_url(cluster: RedisClusterProcesses) -> str:
    """A steadycache cluster URL naming every node as a seed, so any one may die."""
    seeds = ",".join(f"{host}:{port}" for host, port in cluster.startup_nodes)
    return f"redis+cluster://{seeds}"


def configure_as_cache(*servers: RedisServer) -> None:
    """Give servers we started a memory bound and an eviction policy, as a cache server has."""
    for server in servers:
        server.execute("CONFIG", "SET", "maxmemory", "256mb")
        server.execute("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")


def shared_policy(**consistency: object) -> Policy:
    return Policy(
        pattern=ReadThrough(),
        invalidation=Ttl(60),
        consistency=SharedTiers(**consistency),  # type: ignore[arg-type]
        eviction=Eviction(accept_redis_noeviction=True),
        stampede=Stampede(),
    )


def redis_keys(url: str) -> list[bytes]:
    with redis.Redis.from_url(url) as client:
        return sorted(client.keys("*"))
