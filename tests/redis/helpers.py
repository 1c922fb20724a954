"""Building caches over the test servers, and the few sync/async pairs the library's APIs
still need (each says which difference it stands in for)."""

from __future__ import annotations

import asyncio

import redis

from steadycache import AsyncCache, Cache, Eviction, Policy, ReadThrough, Stampede, Ttl
from steadycache.policy import SharedTiers
from steadycache.stores.redis import RedisStore
from steadycache.stores.redis_async import AsyncRedisStore
from steadycache.stores.redis_backend import lease_key
from steadycache.stores.tiered import TieredStore
from steadycache.stores.tiered_async import AsyncTieredStore
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


# --- where the sync and async APIs still differ -----------------------------------------------


async def lease_held_async(store: AsyncRedisStore | AsyncTieredStore, stored_key: str) -> bool:
    """Whether some process holds the key's lease, asked of Redis with the EXISTS that
    ``RedisStore.lease_held`` sends: the async stores have no ``lease_held`` yet."""
    shared = store.shared if isinstance(store, AsyncTieredStore) else store
    backend = shared.backend
    return bool(await backend.client.exists(lease_key(backend.key_prefix, stored_key)))


def lease_held(store: RedisStore | TieredStore, stored_key: str) -> bool:
    """Whether some process holds the key's lease (the store's own ``lease_held``)."""
    return store.lease_held(stored_key)


async def maintenance_done_async(cache: AsyncCache) -> None:
    """Wait for the tasks a maintenance pass (``_maintain``) started: in asyncio it re-reads
    the shared generation in a background task."""
    await asyncio.gather(*cache._tasks)


def maintenance_done(cache: Cache) -> None:
    """Nothing to wait for: the sync maintenance pass re-reads the generation inline."""


# --- known library bugs, per flavour: a test marks itself xfail where one bites in its flavour
# only (delete the pair and the mark with the fix) -------------------------------------------

#: ``AsyncRedisStore.clear``/``delete_prefix`` on a cluster may miss a primary's keys: the
#: async cluster client, initialised lazily by the first (script) command, often knows two
#: of the three primaries, and its SCAN goes to the primaries it knows. Intermittent.
cluster_clear_is_partial_async = True
cluster_clear_is_partial = False
