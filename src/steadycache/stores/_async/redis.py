"""A Redis or Valkey deployment as steadycache sees it, and one namespace's entries in it.

``AsyncRedisBackend``: one client, bounded connect and command timeouts, and a circuit
breaker: after ``breaker_failures`` consecutive failures Redis is not called for
``breaker_reset`` seconds, so a dead server costs nothing per request instead of a timeout
per request. It also checks the server's eviction policy and reads its metrics.

``AsyncRedisStore``: each entry is one binary envelope stored with ``PXAT stale_until``
(the server drops what can never be served), written through the versioned, leased write
script (``redis_common.SET_VERSIONED``); leases are claimed, renewed and released by
scripts too. URLs and scripts: ``stores/redis_common.py``.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from steadycache._core.breaker import CircuitBreaker
from steadycache._core.entry import Entry
from steadycache._runtime import AsyncCall
from steadycache.codecs import Codec
from steadycache.errors import ConfigurationError, StoreError
from steadycache.stores.base import StoreStats, WriteOutcome
from steadycache.stores.redis_clients import (
    ensure_ready_async,
    is_cluster_client_async,
    make_client_async,
    open_pubsub_async,
    scan_targets,
    sentinels_of,
)
from steadycache.stores.redis_common import (
    CLAIM_LEASE,
    DOCUMENT_TTL_SECONDS,
    MOVE_MARK,
    RELEASE_LEASE,
    RENEW_LEASE,
    SET_VERSIONED,
    WRITTEN,
    RedisStoreBase,
    ServerReport,
    _require_redis,
    admit,
    config_forbidden_report,
    evaluate_server_config,
    failure,
    lease_key,
    normalise_config,
    redis_key,
    sum_server_info,
)

logger = logging.getLogger("steadycache")
T = TypeVar("T")

#: Server metrics (evictions, memory) are read at most this often.
SERVER_STATS_MAX_AGE = 1.0


async def _nothing() -> None:
    """The call ``ready()`` makes: ``call`` learns the cluster before any command."""


class AsyncRedisBackend:
    """One Redis deployment shared by every namespace of a cache.

    Give a ``url`` or an existing redis-py ``client`` (standalone, Sentinel-managed or a
    cluster client). ``key_prefix`` is prepended to every key steadycache writes.
    """

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
                "consistency", f"{type(self).__name__} needs exactly one of url, client"
            )
        if client is None:
            assert url is not None
            client, cluster = make_client_async(
                url, command_timeout=command_timeout, connect_timeout=connect_timeout
            )
        else:
            cluster = is_cluster_client_async(client)
        self.client = client
        self.is_cluster = cluster
        self.url = url
        self.key_prefix = key_prefix
        self.command_timeout = command_timeout
        self.breaker = CircuitBreaker(breaker_failures, breaker_reset, clock)
        self.errors = 0
        self.breaker_rejections = 0
        self._redis = _require_redis()
        self._scripts: dict[str, Any] = {}
        self._server_stats: dict[str, int] = {}
        self._server_stats_at = float("-inf")
        self._checked: set[bool] = set()
        self._ready = not cluster

    # --- calling Redis ------------------------------------------------------------------

    async def call(self, operation: str, function: AsyncCall[T], *args: Any, **kwargs: Any) -> T:
        """Run one Redis call behind the breaker; failures become ``StoreError`` (chained)."""
        admit(self, operation)
        try:
            if not self._ready:
                await ensure_ready_async(self.client, self.is_cluster)
                self._ready = True
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
                # A node that never saw the script (a replica promoted by a failover): send
                # the source. redis-py's own reload may target the pre-failover topology.
                return await self.client.eval(source, len(keys), *keys, *args)

        return await self.call(operation, run)

    async def publish(self, channel: str, message: str) -> None:
        """PUBLISH behind the breaker (on a cluster, any node: it broadcasts)."""
        if self.is_cluster:
            await self.call(
                "PUBLISH",
                self.client.execute_command,
                "PUBLISH",
                channel,
                message,
                target_nodes="random",
            )
        else:
            await self.call("PUBLISH", self.client.publish, channel, message)

    def pubsub(self) -> Any:
        """A new pub/sub object for a subscriber (the backplane)."""
        return open_pubsub_async(self.client, self.is_cluster, self.command_timeout)

    # --- checks and server metrics ------------------------------------------------------

    async def check_server(self, *, accept_noeviction: bool) -> ServerReport:
        """Read ``maxmemory`` and ``maxmemory-policy``; refuse ``noeviction`` unless accepted."""

        async def config_get() -> dict[str, str]:
            return normalise_config(await self.client.config_get("maxmemory*"), self.is_cluster)

        try:
            config = await self.call("CONFIG GET", config_get)
        except StoreError as exc:
            if isinstance(exc.__cause__, self._redis.exceptions.NoPermissionError):
                return config_forbidden_report()
            raise
        return evaluate_server_config(config, accept_noeviction=accept_noeviction)

    async def ready(self) -> None:
        """Make a cluster client learn the whole cluster, once; every call does it first.

        redis-py's asyncio cluster client, initialised lazily by its first command, routes
        that command to a random node, and on the MOVED reply marks the slot's real primary
        a replica: a SCAN of the primaries then misses its keys, and pub/sub finds no node.
        """
        if not self._ready:
            await self.call("CLUSTER", _nothing)

    async def check_server_once(self, *, accept_noeviction: bool) -> None:
        """``check_server`` the first time each acceptance setting asks."""
        await self.ready()
        if accept_noeviction not in self._checked:
            report = await self.check_server(accept_noeviction=accept_noeviction)
            logger.info("redis: %s", report.note)
            self._checked.add(accept_noeviction)

    async def server_stats(self) -> dict[str, int]:
        """Server-side evictions, expirations and memory (summed over cluster nodes)."""
        info = await self.call("INFO", self.client.info)
        self._server_stats = sum_server_info(info, self.is_cluster)
        self._server_stats_at = time.monotonic()
        return self._server_stats

    async def refresh_server_stats(self, max_age: float = SERVER_STATS_MAX_AGE) -> None:
        """Re-read ``server_stats`` when the last reading is older than ``max_age``."""
        if time.monotonic() - self._server_stats_at < max_age:
            return
        self._server_stats_at = time.monotonic()
        try:
            await self.server_stats()
        except StoreError as error:
            logger.warning("redis INFO unavailable for metrics: %s", error)
            self._server_stats = {}

    def recent_server_stats(self) -> dict[str, int]:
        """The last ``server_stats`` read ({} while unreachable); stats snapshots do no I/O."""
        return self._server_stats

    def redis_key(self, stored_key: str) -> str:
        """The Redis key of a stored key (see ``redis_common.redis_key``)."""
        return redis_key(self.key_prefix, stored_key)

    def lease_key(self, stored_key: str) -> str:
        """The lease key of a stored key (see ``redis_common.lease_key``)."""
        return lease_key(self.key_prefix, stored_key)

    async def aclose(self) -> None:
        """Close the connections (to the sentinels too, for a Sentinel-managed client)."""
        await self.client.aclose()
        for sentinel in sentinels_of(self.client):
            await sentinel.aclose()


class AsyncRedisStore(RedisStoreBase):
    """One namespace's entries in Redis."""

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

    # --- reads ----------------------------------------------------------------------------

    async def get(self, key: str, now: float | None = None) -> Entry | None:
        # The server expires entries by its own clock: ``now`` is not needed.
        blob = await self.backend.call("GET", self._client.get, self._key(key))
        return self._decode(key, blob)

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        if not keys:
            return []
        # A cluster spreads these keys over slots: mget_nonatomic splits by slot.
        fetch = self._client.mget_nonatomic if self.backend.is_cluster else self._client.mget
        blobs = await self.backend.call("MGET", fetch, [self._key(key) for key in keys])
        return [self._decode(key, blob) for key, blob in zip(keys, blobs, strict=True)]

    # --- writes ---------------------------------------------------------------------------

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
        # The lease goes too: an in-flight load must not write its pre-delete value.
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
        await self.backend.ready()  # a SCAN must reach every primary
        removed = 0
        for pattern in self._prefix_patterns(prefix):

            async def scan(match: str = pattern) -> set[Any]:
                keys: set[Any] = set()
                for target in scan_targets(self._client, self.backend.is_cluster):
                    async for key in self._client.scan_iter(match=match, count=500, **target):
                        keys.add(key)
                return keys

            for key in await self.backend.call("SCAN", scan):
                removed += int(await self.backend.call("DEL", self._client.delete, key))
        return removed

    async def clear(self) -> None:
        """Delete every entry of this store's namespace (all generations)."""
        await self.delete_prefix(f"{self.namespace}:")

    # --- leases ---------------------------------------------------------------------------

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

    async def lease_held(self, key: str) -> bool:
        """Whether some process holds the key's lease."""
        return bool(await self.backend.call("EXISTS", self._client.exists, self._lease(key)))

    # --- documents ------------------------------------------------------------------------

    async def put_document(self, name: str, text: str) -> None:
        """Keep a small document of this namespace (a hot-key snapshot) for the fleet."""
        await self.backend.call(
            "SET", self._client.set, self._document_key(name), text, ex=DOCUMENT_TTL_SECONDS
        )

    async def get_document(self, name: str) -> str | None:
        """A document kept by ``put_document``, or None."""
        raw = await self.backend.call("GET", self._client.get, self._document_key(name))
        return None if raw is None else bytes(raw).decode(errors="replace")

    # --- invalidation marks -----------------------------------------------------------------

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

    # --- introspection --------------------------------------------------------------------

    def stats(self) -> StoreStats:
        """This namespace's client counters beside the server's evictions and memory."""
        return self._stats(self.backend.recent_server_stats(), self.backend.errors)

    async def aclose(self) -> None:
        """The backend owns the connections; nothing to release per namespace."""
