"""A Redis or Valkey deployment as steadycache sees it: one client, timeouts, a breaker, checks.

URLs: ``redis://[user:password@]host:port/db`` and ``rediss://`` (TLS) for one server;
``redis+cluster://host:port`` (or ``rediss+cluster://``) for a Redis Cluster, any node as
the seed; ``redis+sentinel://host:port[,host:port...]/service[/db]`` for Sentinel. Every
command has bounded connect and command timeouts, and runs behind a circuit breaker: after
``breaker_failures`` consecutive failures Redis is not called for ``breaker_reset``
seconds, so a dead server costs nothing per request instead of a timeout per request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote, urlsplit

from steadycache._core.breaker import CircuitBreaker
from steadycache.errors import ConfigurationError, StoreError

logger = logging.getLogger("steadycache")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ServerReport:
    """What the server said about memory and eviction when steadycache connected."""

    maxmemory: int | None
    maxmemory_policy: str | None
    readable: bool
    note: str


def _require_redis() -> Any:
    try:
        import redis
    except ImportError as exc:
        raise ConfigurationError(
            "consistency", "a Redis store needs the extra: pip install 'steadycache[redis]'"
        ) from exc
    return redis


@dataclass(frozen=True, slots=True)
class RedisUrl:
    """A parsed steadycache Redis URL: which topology, and how to reach it."""

    kind: str  # "single", "cluster" or "sentinel"
    url: str  # for single and cluster: a URL redis-py's from_url understands
    #: Sentinel addresses, or a cluster's seed nodes.
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    auth: tuple[tuple[str, Any], ...] = ()


def parse_url(url: str) -> RedisUrl:
    """Parse ``redis://``, ``rediss://``, ``redis+cluster://`` or ``redis+sentinel://``."""
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme in ("redis+cluster", "rediss+cluster"):
        # Several seeds (host:port,host:port) survive the loss of any one seed node.
        netloc = parts.netloc.rsplit("@", 1)[-1]
        seeds = []
        for host_port in netloc.split(","):
            host, _, port = host_port.partition(":")
            seeds.append((host, int(port or 6379)))
        first = url.replace("+cluster", "", 1).replace(netloc, netloc.split(",")[0], 1)
        return RedisUrl("cluster", first, sentinels=tuple(seeds))
    if scheme in ("redis+sentinel", "rediss+sentinel"):
        hosts = []
        for host_port in parts.netloc.rsplit("@", 1)[-1].split(","):
            host, _, port = host_port.partition(":")
            hosts.append((host, int(port or 26379)))
        path = [piece for piece in parts.path.split("/") if piece]
        if not path:
            raise ConfigurationError(
                "consistency", f"sentinel URL {url!r} needs a service name: .../service[/db]"
            )
        auth: list[tuple[str, Any]] = []
        if parts.username:
            auth.append(("username", unquote(parts.username)))
        if parts.password:
            auth.append(("password", unquote(parts.password)))
        if scheme.startswith("rediss"):
            auth.append(("ssl", True))
        db = int(path[1]) if len(path) > 1 else 0
        return RedisUrl("sentinel", url, tuple(hosts), path[0], db, tuple(auth))
    if scheme in ("redis", "rediss", "unix"):
        return RedisUrl("single", url)
    raise ConfigurationError(
        "consistency",
        f"unsupported Redis URL scheme {scheme!r}; use redis://, rediss://, "
        "redis+cluster://, redis+sentinel://",
    )


def make_client(url: str, *, command_timeout: float, connect_timeout: float) -> tuple[Any, bool]:
    """A synchronous redis-py client for ``url`` and whether it is a cluster client."""
    redis = _require_redis()
    parsed = parse_url(url)
    options: dict[str, Any] = {
        "socket_timeout": command_timeout,
        "socket_connect_timeout": connect_timeout,
    }
    if parsed.kind == "cluster":
        from redis.cluster import ClusterNode, RedisCluster

        seeds = [ClusterNode(host, port) for host, port in parsed.sentinels]  # type: ignore[no-untyped-call]
        client = RedisCluster.from_url(parsed.url, startup_nodes=seeds, **options)  # type: ignore[no-untyped-call]
        return client, True
    if parsed.kind == "sentinel":
        from redis.sentinel import Sentinel

        sentinel = Sentinel(list(parsed.sentinels), sentinel_kwargs=dict(options), **options)  # type: ignore[no-untyped-call]
        master = sentinel.master_for(parsed.service, db=parsed.db, **dict(parsed.auth))  # type: ignore[no-untyped-call]
        return master, False
    return redis.Redis.from_url(parsed.url, **options), False


class RedisBackend:
    """One Redis deployment shared by every namespace of a ``Cache``.

    Give a ``url`` or an existing redis-py ``client`` (standalone, Sentinel-managed or
    ``RedisCluster``). ``key_prefix`` is prepended to every key steadycache writes.
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
            raise ConfigurationError("consistency", "RedisBackend needs exactly one of url, client")
        if client is None:
            assert url is not None
            client, cluster = make_client(
                url, command_timeout=command_timeout, connect_timeout=connect_timeout
            )
        else:
            from redis.cluster import RedisCluster

            cluster = isinstance(client, RedisCluster)
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
        self._backplane: Any = None

    # --- calling Redis ------------------------------------------------------------------

    def call(self, operation: str, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one Redis call behind the breaker; failures become ``StoreError`` (chained)."""
        admit(self, operation)
        try:
            result = function(*args, **kwargs)
        except Exception as exc:
            raise failure(self, operation, exc) from exc
        self.breaker.record(failed=False)
        return result

    def run_script(self, operation: str, source: str, keys: list[str], args: list[Any]) -> Any:
        """Run a Lua script by its digest, or by its source where a node lacks it."""
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self.client.register_script(source)
        no_script = self._redis.exceptions.NoScriptError

        def run() -> Any:
            try:
                return script(keys=keys, args=args)
            except no_script:
                # A node that never saw the script (a replica promoted by a failover): send
                # the source. redis-py's own reload may target the pre-failover topology.
                return self.client.eval(source, len(keys), *keys, *args)

        return self.call(operation, run)

    # --- checks and server metrics ------------------------------------------------------

    def check_server(self, *, accept_noeviction: bool) -> ServerReport:
        """Read ``maxmemory`` and ``maxmemory-policy``; refuse ``noeviction`` unless accepted."""
        try:
            config = self.call("CONFIG GET", self._config_get, "maxmemory*")
        except StoreError as exc:
            if isinstance(exc.__cause__, self._redis.exceptions.NoPermissionError):
                return config_forbidden_report()
            raise
        return evaluate_server_config(config, accept_noeviction=accept_noeviction)

    def _config_get(self, pattern: str) -> dict[str, str]:
        return normalise_config(self.client.config_get(pattern), self.is_cluster)

    def server_stats(self) -> dict[str, int]:
        """Server-side evictions, expirations and memory (summed over cluster nodes)."""
        return sum_server_info(self.call("INFO", self.client.info), self.is_cluster)

    def recent_server_stats(self, max_age: float = 1.0) -> dict[str, int]:
        """``server_stats``, read at most once per ``max_age`` seconds; {} while unreachable."""
        now = time.monotonic()
        if now - self._server_stats_at >= max_age:
            self._server_stats_at = now
            try:
                self._server_stats = self.server_stats()
            except StoreError as error:
                logger.warning("redis INFO unavailable for metrics: %s", error)
                self._server_stats = {}
        return self._server_stats

    def redis_key(self, stored_key: str) -> str:
        """The Redis key of a stored key (see ``redis_key``)."""
        return redis_key(self.key_prefix, stored_key)

    def lease_key(self, stored_key: str) -> str:
        """The lease key of a stored key (see ``lease_key``)."""
        return lease_key(self.key_prefix, stored_key)

    def backplane(self) -> Any:
        """The pub/sub backplane of this deployment, started on first use."""
        if self._backplane is None:
            from steadycache.stores.backplane import Backplane

            self._backplane = Backplane(self)
        return self._backplane

    def close(self) -> None:
        """Stop the backplane and close connections."""
        if self._backplane is not None:
            self._backplane.close()
            self._backplane = None
        self.client.close()


class BreakerState(Protocol):
    """What ``admit`` and ``failure`` keep on a backend (sync or async)."""

    breaker: CircuitBreaker
    errors: int
    breaker_rejections: int
    _redis: Any


def admit(backend: BreakerState, operation: str) -> None:
    """Raise ``StoreError`` at once while the breaker is open: no call, no timeout."""
    if not backend.breaker.allow():
        backend.breaker_rejections += 1
        raise StoreError(f"redis {operation}: circuit breaker open after repeated failures")


def failure(backend: BreakerState, operation: str, exc: Exception) -> StoreError:
    """Count a failed call and the ``StoreError`` to raise for it (the caller chains it)."""
    backend.errors += 1
    if isinstance(exc, backend._redis.exceptions.DataError | UnicodeError):
        # The client refused what it was given (keys are validated before any I/O, so this
        # is a bug, not an outage): one caller's input must never open the breaker that
        # every namespace on this server shares, nor close it (it says nothing of Redis).
        backend.breaker.cancel_trial()
        return StoreError(f"redis {operation}: the client refused the request: {exc!r}")
    if isinstance(exc, backend._redis.exceptions.ResponseError):
        # The server answered (a permission or script error): it is up, the breaker
        # stays closed, but the caller still gets a StoreError.
        backend.breaker.record(failed=False)
        return StoreError(f"redis {operation} refused: {exc!r}")
    # Connection errors, timeouts, and what a cluster client raises mid-failover
    # (RedisClusterException is not a RedisError; redis-py can even raise AttributeError
    # on a connection torn down under it): all are store failures, never the caller's.
    backend.breaker.record(failed=True)
    return StoreError(f"redis {operation} failed: {exc!r}")


def evaluate_server_config(config: dict[str, str], *, accept_noeviction: bool) -> ServerReport:
    """The eviction decision applied to a server's ``maxmemory*`` settings."""
    policy = config.get("maxmemory-policy")
    maxmemory = int(config.get("maxmemory", 0) or 0)
    if policy == "noeviction" and not accept_noeviction:
        raise ConfigurationError(
            "eviction",
            "the Redis server's maxmemory-policy is noeviction: when memory is full every "
            "cache write fails. Set an eviction policy (allkeys-lru, allkeys-lfu, ...) or "
            "accept it with Eviction(accept_redis_noeviction=True)",
        )
    note = f"maxmemory={maxmemory} maxmemory-policy={policy}"
    if policy is not None and policy.startswith("volatile-"):
        note += " (steadycache gives every key a TTL, so volatile-* can evict them)"
    if maxmemory == 0:
        note += " (no memory limit: the server grows until the OS stops it)"
        logger.warning("redis: maxmemory is 0, the cache has no memory bound")
    return ServerReport(maxmemory, policy, readable=True, note=note)


def config_forbidden_report() -> ServerReport:
    """What to report (and log) when ACLs forbid ``CONFIG GET``."""
    note = "CONFIG is forbidden by ACL: eviction policy not checked"
    logger.warning("redis: %s; carrying on", note)
    return ServerReport(None, None, readable=False, note=note)


def normalise_config(raw: dict[Any, Any], is_cluster: bool) -> dict[str, str]:
    """``CONFIG GET`` as text; a cluster answers per node, the first speaks for all."""
    if is_cluster and raw and all(isinstance(v, dict) for v in raw.values()):
        raw = next(iter(raw.values()))
    return {_text(k): _text(v) for k, v in raw.items()}


def sum_server_info(info: dict[str, Any], is_cluster: bool) -> dict[str, int]:
    """Evictions, expirations and memory from ``INFO``, summed over cluster nodes."""
    nodes = list(info.values()) if is_cluster and _per_node(info) else [info]
    totals = {"evicted_keys": 0, "expired_keys": 0, "used_memory": 0, "maxmemory": 0}
    for node in nodes:
        for name in totals:
            totals[name] += int(node.get(name, 0) or 0)
    return totals


def redis_key(prefix: str, stored_key: str) -> str:
    """The Redis key of a stored key; the braces make it its own cluster hash slot."""
    return f"{prefix}:{{{stored_key}}}"


def lease_key(prefix: str, stored_key: str) -> str:
    """The lease key of a stored key, in the same hash slot as its data key."""
    return f"{prefix}:lease:{{{stored_key}}}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _per_node(info: dict[str, Any]) -> bool:
    return bool(info) and all(isinstance(v, dict) for v in info.values())
