"""The asyncio twins of ``RedisBackend`` and ``RedisStore``, on ``redis.asyncio``.

Same URLs, timeouts, breaker, Lua scripts, key layout and envelope as the sync ones (the
shared parts live in ``redis_backend`` and ``RedisStoreBase``); only the calls are awaited.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from steadycache._core.breaker import CircuitBreaker
from steadycache._core.entry import Entry
from steadycache.codecs import Codec
from steadycache.errors import ConfigurationError, StoreError
from steadycache.stores.base import StoreStats, WriteOutcome
from steadycache.stores.redis import (
    CLAIM_LEASE,
    DOCUMENT_TTL_SECONDS,
    MOVE_MARK,
    RELEASE_LEASE,
    RENEW_LEASE,
    SET_VERSIONED,
    WRITTEN,
    RedisStoreBase,
)
from steadycache.stores.redis_backend import (
    ServerReport,
    _require_redis,
    admit,
    config_forbidden_report,
    evaluate_server_config,
    failure,
    normalise_config,
    parse_url,
    sum_server_info,
)

logger = logging.getLogger("steadycache")
T = TypeVar("T")


def make_async_client(
    url: str, *, command_timeout: float, connect_timeout: float
) -> tuple[Any, bool]:
    """A ``redis.asyncio`` client for ``url`` and whether it is a cluster client."""
    _require_redis()
    import redis.asyncio as aioredis

    parsed = parse_url(url)
    options: dict[str, Any] = {
        "socket_timeout": command_timeout,
        "socket_connect_timeout": connect_timeout,
    }
    if parsed.kind == "cluster":
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        seeds = [ClusterNode(host, port) for host, port in parsed.sentinels]
        return RedisCluster.from_url(parsed.url, startup_nodes=seeds, **options), True
    if parsed.kind == "sentinel":
        from redis.asyncio.sentinel import Sentinel

        sentinel = Sentinel(list(parsed.sentinels), sentinel_kwargs=dict(options), **options)  # type: ignore[no-untyped-call]
        master = sentinel.master_for(parsed.service, db=parsed.db, **dict(parsed.auth))
        return master, False
    return aioredis.Redis.from_url(parsed.url, **options), False


class AsyncRedisBackend:
    """One Redis deployment for an ``AsyncCache`` (see ``RedisBackend``)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        command_timeout: float = 0.25,
        connect_timeout: float = 0.25,
        breaker_failures: int = 5,
        breaker_reset: float = 2.0,
        key_prefix: str = "sc",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (url is None) == (client is None):
            raise ConfigurationError(
                "consistency", "AsyncRedisBackend needs exactly one of url, client"
            )
        if client is None:
            assert url is not None
            client, cluster = make_async_client(
                url, command_timeout=command_timeout, connect_timeout=connect_timeout
            )
        else:
            from redis.asyncio.cluster import RedisCluster

            cluster = isinstance(client, RedisCluster)
        self.client = client
        self.is_cluster = cluster
        #: The URL it was made from (None when given a client): journals connect with it.
        self.url = url
        self._command_timeout = command_timeout
        self.key_prefix = key_prefix
        self.breaker = CircuitBreaker(breaker_failures, breaker_reset, clock)
        self.errors = 0
        self.breaker_rejections = 0
        self._redis = _require_redis()
        self._scripts: dict[str, Any] = {}
        self._server_stats: dict[str, int] = {}
        self._checked: set[bool] = set()
        self._backplane: Any = None

    async def call(
        self, operation: str, function: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
    ) -> T:
        """Await one Redis call behind the breaker; failures become ``StoreError``."""
        admit(self, operation)
        try:
            result = await function(*args, **kwargs)
        except Exception as exc:
            raise failure(self, operation, exc) from exc
        self.breaker.record(failed=False)
        return result

    async def run_script(
        self, operation: str, source: str, keys: list[str], args: list[Any]
    ) -> Any:
        """Run a Lua script by its digest, or by its source where a node lacks it."""
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self.client.register_script(source)
        no_script = self._redis.exceptions.NoScriptError

        async def run() -> Any:
            try:
                return await script(keys=keys, args=args)
            except no_script:
                # A node that never saw the script (a replica promoted by a failover).
                return await self.client.eval(source, len(keys), *keys, *args)

        return await self.call(operation, run)

    async def check_server(self, *, accept_noeviction: bool) -> ServerReport:
        """Read ``maxmemory*``; refuse ``noeviction`` unless accepted (see ``RedisBackend``)."""

        async def config_get() -> dict[str, str]:
            return normalise_config(await self.client.config_get("maxmemory*"), self.is_cluster)

        try:
            config = await self.call("CONFIG GET", config_get)
        except StoreError as exc:
            if isinstance(exc.__cause__, self._redis.exceptions.NoPermissionError):
                return config_forbidden_report()
            raise
        return evaluate_server_config(config, accept_noeviction=accept_noeviction)

    async def check_server_once(self, *, accept_noeviction: bool) -> None:
        """``check_server`` the first time each acceptance setting asks."""
        if accept_noeviction not in self._checked:
            report = await self.check_server(accept_noeviction=accept_noeviction)
            logger.info("redis: %s", report.note)
            self._checked.add(accept_noeviction)

    async def server_stats(self) -> dict[str, int]:
        """Server-side evictions, expirations and memory (summed over cluster nodes)."""
        info = await self.call("INFO", self.client.info)
        self._server_stats = sum_server_info(info, self.is_cluster)
        return self._server_stats

    def recent_server_stats(self) -> dict[str, int]:
        """The last ``server_stats`` read (stats snapshots are synchronous)."""
        return self._server_stats

    def pubsub(self) -> Any:
        """A pub/sub object. ``redis.asyncio``'s cluster client has none, but a cluster
        broadcasts classic PUBLISH to every node, so one node's subscription hears all."""
        if not self.is_cluster:
            return self.client.pubsub(ignore_subscribe_messages=True)
        import random

        import redis.asyncio as aioredis

        node = random.choice(self.client.get_nodes())  # another node after a reconnect
        connection = aioredis.Redis(
            host=node.host,
            port=node.port,
            socket_timeout=self._command_timeout,
            socket_connect_timeout=self._command_timeout,
        )
        return connection.pubsub(ignore_subscribe_messages=True)

    async def publish(self, channel: str, message: str) -> None:
        """PUBLISH behind the breaker (any node of a cluster)."""
        if self.is_cluster:
            from redis.asyncio.cluster import RedisCluster

            await self.call(
                "PUBLISH",
                self.client.execute_command,
                "PUBLISH",
                channel,
                message,
                target_nodes=RedisCluster.RANDOM,
            )
        else:
            await self.call("PUBLISH", self.client.publish, channel, message)

    def backplane(self) -> Any:
        """The pub/sub backplane of this deployment, started on first use (needs a loop)."""
        if self._backplane is None:
            from steadycache.stores.backplane_async import AsyncBackplane

            self._backplane = AsyncBackplane(self)
        return self._backplane

    async def aclose(self) -> None:
        """Stop the backplane and close connections."""
        if self._backplane is not None:
            await self._backplane.aclose()
            self._backplane = None
        await self.client.aclose()


class AsyncRedisStore(RedisStoreBase):
    """One namespace's entries in Redis, for asyncio."""

    def __init__(
        self,
        backend: AsyncRedisBackend,
        codec: Codec,
        *,
        namespace: str,
        wait_replicas: int = 0,
        wait_timeout: float = 0.1,
        tier: str = "redis",
    ) -> None:
        super().__init__(
            codec,
            key_prefix=backend.key_prefix,
            namespace=namespace,
            wait_replicas=wait_replicas,
            wait_timeout=wait_timeout,
            tier=tier,
        )
        self.backend = backend
        self._client = backend.client

    async def get(self, key: str, now: float | None = None) -> Entry | None:
        blob = await self.backend.call("GET", self._client.get, self._key(key))
        return self._decode(key, blob)

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        if not keys:
            return []
        fetch = self._client.mget_nonatomic if self.backend.is_cluster else self._client.mget
        blobs = await self.backend.call("MGET", fetch, [self._key(key) for key in keys])
        return [self._decode(key, blob) for key, blob in zip(keys, blobs, strict=True)]

    async def set(self, key: str, entry: Entry) -> None:
        await self._write(key, entry, "")

    async def set_leased(self, key: str, entry: Entry, token: str) -> bool:
        """Write only while ``token`` still holds the key's lease; whether it was written."""
        return await self.write_leased(key, entry, token) is WRITTEN

    async def write_leased(self, key: str, entry: Entry, token: str) -> WriteOutcome:
        """Write while ``token`` holds the key's lease; the lease is gone afterwards."""
        return await self._write(key, entry, token)

    async def _write(self, key: str, entry: Entry, token: str) -> WriteOutcome:
        keys, args = self._write_arguments(key, entry, token)
        raw = await self.backend.run_script("SET", SET_VERSIONED, keys, args)
        outcome = WriteOutcome(int(raw))
        if self._note_outcome(outcome):
            await self._wait_for_replicas(keys[0])
        return outcome

    async def _wait_for_replicas(self, redis_key: str) -> None:
        if self.backend.is_cluster:
            node = self._client.get_node_from_key(redis_key)
            acknowledged = await self.backend.call(
                "WAIT",
                self._client.execute_command,
                "WAIT",
                self._wait_replicas,
                self._wait_timeout_ms,
                target_nodes=node,
            )
        else:
            acknowledged = await self.backend.call(
                "WAIT", self._client.wait, self._wait_replicas, self._wait_timeout_ms
            )
        self._note_acknowledged(int(acknowledged))

    async def set_many(self, items: Mapping[str, Entry]) -> None:
        for key, entry in items.items():
            await self.set(key, entry)

    async def delete(self, key: str) -> bool:
        removed = await self.backend.call(
            "DEL", self._client.delete, self._key(key), self._lease(key)
        )
        self.deletes += 1
        return int(removed) > 0

    async def delete_many(self, keys: Sequence[str]) -> int:
        removed = 0
        for key in keys:
            removed += await self.delete(key)
        return removed

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every entry (and lease) whose stored key starts with ``prefix``."""
        removed = 0
        for pattern in self._prefix_patterns(prefix):

            async def scan(match: str = pattern) -> list[Any]:
                return [key async for key in self._client.scan_iter(match=match, count=500)]

            for key in await self.backend.call("SCAN", scan):
                removed += int(await self.backend.call("DEL", self._client.delete, key))
        return removed

    async def clear(self) -> None:
        """Delete every entry of this store's namespace (all generations)."""
        await self.delete_prefix(f"{self.namespace}:")

    async def acquire_lease(self, key: str, ttl: float) -> str | None:
        """A token when this process now holds the key's lease, else None."""
        return (await self.claim_lease(key, ttl))[0]

    async def claim_lease(self, key: str, ttl: float) -> tuple[str | None, float]:
        """Take the key's lease: (token, 0) when won, else (None, seconds the holder has left)."""
        token = secrets.token_hex(12)
        raw = await self.backend.run_script(
            "CLAIM", CLAIM_LEASE, [self._lease(key)], [token, self._ms(ttl)]
        )
        return self._claim(raw, token)

    async def renew_lease(self, key: str, token: str, ttl: float) -> bool:
        """Give a lease still held by ``token`` another ``ttl``; False once it is not ours."""
        renewed = await self.backend.run_script(
            "RENEW", RENEW_LEASE, [self._lease(key)], [token, self._ms(ttl)]
        )
        return bool(int(renewed))

    async def release_lease(self, key: str, token: str) -> None:
        """Give the lease back if still ours (compare-and-delete)."""

        await self.backend.run_script("RELEASE", RELEASE_LEASE, [self._lease(key)], [token])

    async def put_document(self, name: str, text: str) -> None:
        """Keep a small document of this namespace (a hot-key snapshot) for the fleet."""
        await self.backend.call(
            "SET", self._client.set, self._document_key(name), text, ex=DOCUMENT_TTL_SECONDS
        )

    async def get_document(self, name: str) -> str | None:
        """A document kept by ``put_document``, or None."""
        raw = await self.backend.call("GET", self._client.get, self._document_key(name))
        return None if raw is None else bytes(raw).decode(errors="replace")

    async def read_marks(self, fields: Sequence[str]) -> list[int]:
        """The namespace's counters for ``fields`` (0 where never moved)."""
        raw = await self.backend.call("HMGET", self._client.hmget, self._marks_key(), list(fields))
        return self._counters(raw)

    async def move_mark(self, field: str, floor: int, step: int = 1) -> int:
        """Move a counter to ``max(stored, floor) + step``; the new value."""
        moved = await self.backend.run_script(
            "MARK", MOVE_MARK, [self._marks_key()], [field, floor, step]
        )
        return int(moved)

    def stats(self) -> StoreStats:
        return self._stats(self.backend.recent_server_stats(), self.backend.errors)

    async def close(self) -> None:
        """The backend owns the connections; nothing to release per namespace."""
