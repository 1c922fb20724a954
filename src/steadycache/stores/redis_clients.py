"""redis-py clients, sync and asyncio: where the two client libraries differ, by hand.

Everything else about talking to Redis is written once (``stores/_async/redis.py``); these
factories are the part a rewrite rule cannot bridge: the sync and asyncio clients live in
different modules, and ``redis.asyncio``'s cluster client has no pub/sub of its own.
"""

from __future__ import annotations

import random
from typing import Any

from steadycache.stores.redis_common import _require_redis, parse_url


def _options(command_timeout: float, connect_timeout: float) -> dict[str, Any]:
    return {"socket_timeout": command_timeout, "socket_connect_timeout": connect_timeout}


def make_client(url: str, *, command_timeout: float, connect_timeout: float) -> tuple[Any, bool]:
    """A synchronous redis-py client for ``url`` and whether it is a cluster client."""
    redis = _require_redis()
    parsed = parse_url(url)
    options = _options(command_timeout, connect_timeout)
    if parsed.kind == "cluster":
        from redis.cluster import ClusterNode, RedisCluster

        seeds = [ClusterNode(host, port) for host, port in parsed.sentinels]  # type: ignore[no-untyped-call]
        return RedisCluster.from_url(parsed.url, startup_nodes=seeds, **options), True  # type: ignore[no-untyped-call]
    if parsed.kind == "sentinel":
        from redis.sentinel import Sentinel

        sentinel = Sentinel(list(parsed.sentinels), sentinel_kwargs=dict(options), **options)  # type: ignore[no-untyped-call]
        return sentinel.master_for(parsed.service, db=parsed.db, **dict(parsed.auth)), False  # type: ignore[no-untyped-call]
    return redis.Redis.from_url(parsed.url, **options), False


def make_client_async(
    url: str, *, command_timeout: float, connect_timeout: float
) -> tuple[Any, bool]:
    """A ``redis.asyncio`` client for ``url`` and whether it is a cluster client."""
    _require_redis()
    import redis.asyncio as aioredis

    parsed = parse_url(url)
    options = _options(command_timeout, connect_timeout)
    if parsed.kind == "cluster":
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        seeds = [ClusterNode(host, port) for host, port in parsed.sentinels]
        return RedisCluster.from_url(parsed.url, startup_nodes=seeds, **options), True
    if parsed.kind == "sentinel":
        from redis.asyncio.sentinel import Sentinel

        sentinel = Sentinel(list(parsed.sentinels), sentinel_kwargs=dict(options), **options)  # type: ignore[no-untyped-call]
        return sentinel.master_for(parsed.service, db=parsed.db, **dict(parsed.auth)), False
    return aioredis.Redis.from_url(parsed.url, **options), False


async def ensure_ready_async(client: Any, is_cluster: bool) -> None:
    """Make an asyncio cluster client learn the whole cluster now. Initialised lazily by
    its first command, it may know only some primaries: a SCAN would then miss the others'
    keys, and pub/sub would find no node to subscribe on."""
    if is_cluster:
        await client.initialize()


def ensure_ready(client: Any, is_cluster: bool) -> None:
    """The sync cluster client learns the cluster when it is made: nothing to do."""


def scan_targets(client: Any, is_cluster: bool) -> list[dict[str, Any]]:
    """The ``scan_iter`` keyword arguments that reach every key: on a cluster, one SCAN per
    known node, replicas too, because the client may mistake a primary for a replica (see
    ``AsyncRedisBackend.ready``). A key found twice is deleted once."""
    if not is_cluster:
        return [{}]
    return [{"target_nodes": node} for node in client.get_nodes()]


def sentinels_of(client: Any) -> list[Any]:
    """The clients of the sentinels behind a Sentinel-managed client (closing the primary's
    client leaves their connections open), or none."""
    manager = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
    return list(getattr(manager, "sentinels", ()))


def is_cluster_client(client: Any) -> bool:
    """Whether a client the caller passed in is a (sync) cluster client."""
    from redis.cluster import RedisCluster

    return isinstance(client, RedisCluster)


def is_cluster_client_async(client: Any) -> bool:
    """Whether a client the caller passed in is an asyncio cluster client."""
    from redis.asyncio.cluster import RedisCluster

    return isinstance(client, RedisCluster)


def open_pubsub(client: Any, is_cluster: bool, timeout: float) -> Any:
    """A pub/sub object (the sync cluster client has one that follows the cluster)."""
    return client.pubsub(ignore_subscribe_messages=True)


def open_pubsub_async(client: Any, is_cluster: bool, timeout: float) -> Any:
    """A pub/sub object. ``redis.asyncio``'s cluster client has none, but a cluster
    broadcasts classic PUBLISH to every node, so one node's subscription hears all."""
    if not is_cluster:
        return client.pubsub(ignore_subscribe_messages=True)
    import redis.asyncio as aioredis

    node = random.choice(client.get_nodes())  # another node after a reconnect
    connection = aioredis.Redis(
        host=node.host, port=node.port, socket_timeout=timeout, socket_connect_timeout=timeout
    )
    return connection.pubsub(ignore_subscribe_messages=True)
