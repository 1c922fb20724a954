"""What the sync and async Redis backends and stores share: everything that does no I/O.

URL parsing, the server check's verdict, the breaker bookkeeping of a failed call, key
layout, the Lua scripts, and the envelope and counter logic of a store. The I/O around them
is written once in ``stores/_async/redis.py`` (the sync module is generated from it).

URLs: ``redis://[user:password@]host:port/db`` and ``rediss://`` (TLS) for one server;
``redis+cluster://host:port[,host:port...]`` (or ``rediss+cluster://``) for a Redis
Cluster, any node as a seed; ``redis+sentinel://host:port[,host:port...]/service[/db]`` for
Sentinel.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import unquote, urlsplit

from steadycache._core.breaker import CircuitBreaker
from steadycache._core.entry import (
    DIGEST_SIZE,
    FORMAT_VERSION,
    HEADER_SIZE,
    VERSION_OFFSET,
    Entry,
    pack_entry,
    unpack_entry,
)
from steadycache.codecs import Codec
from steadycache.errors import ConfigurationError, GarbledEntryError, StoreError
from steadycache.stores.base import StoreStats, WriteOutcome

logger = logging.getLogger("steadycache")


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


# KEYS[1] entry, KEYS[2] its lease; ARGV[1] the new envelope, ARGV[2] PXAT (ms), ARGV[3] the
# lease token ('' for an unleased write). Versions compare byte by byte (big-endian,
# non-negative): Lua's string '<' would use the server's collation locale.
SET_VERSIONED: Final = """
local token = ARGV[3]
if token ~= '' and redis.call('GET', KEYS[2]) ~= token then
  return -1
end
local new = ARGV[1]
local old = redis.call('GET', KEYS[1])
if old and string.len(old) >= 54 and string.sub(old, 1, 4) == string.sub(new, 1, 4) then
  local stored_is_newer = false
  for i = 37, 44 do
    local a, b = string.byte(old, i), string.byte(new, i)
    if a ~= b then
      stored_is_newer = a > b
      break
    end
  end
  if stored_is_newer then
    -- Only a verified entry may refuse a write: recompute its digest (SHA-1, first 8 bytes).
    local digest = string.format(string.rep('%02x', 8), string.byte(old, -8, -1))
    if string.sub(redis.sha1hex(string.sub(old, 1, -9)), 1, 16) == digest then
      if token ~= '' then
        redis.call('DEL', KEYS[2])
      end
      return 0
    end
  end
end
redis.call('SET', KEYS[1], new, 'PXAT', ARGV[2])
if token ~= '' then
  redis.call('DEL', KEYS[2])
end
return 1
"""
# The script's numbers: header 46 bytes, version at bytes 37..44 (1-based), digest 8 bytes.
assert (FORMAT_VERSION, VERSION_OFFSET, DIGEST_SIZE, HEADER_SIZE) == (3, 36, 8, 46)

# {1, 0}: the lease is now ARGV[1]'s; {0, ms}: another holder's lease lives ms longer.
CLAIM_LEASE: Final = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, 0}
end
return {0, redis.call('PTTL', KEYS[1])}
"""

# Extend a lease only while it is still ours: an invalidation deletes it, and then the load
# must lose (its leased write will be refused).
RENEW_LEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

RELEASE_LEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# A namespace's invalidation marks (tag counters, generation) in one hash: a counter moves
# to max(stored, floor) + step, so a counter lost with a Redis restart is carried forward
# by the processes that still know it instead of going backwards.
MOVE_MARK: Final = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local floor = tonumber(ARGV[2])
local moved = math.max(current, floor) + tonumber(ARGV[3])
if moved ~= current then
  redis.call('HSET', KEYS[1], ARGV[1], moved)
end
return moved
"""

# Documents (hot-key snapshots) outlive restarts but not abandonment: a week.
DOCUMENT_TTL_SECONDS: Final = 7 * 24 * 3600

WRITTEN: Final = WriteOutcome.WRITTEN
OLDER_THAN_STORED: Final = WriteOutcome.OLDER_THAN_STORED
LEASE_LOST: Final = WriteOutcome.LEASE_LOST


class RedisStoreBase:
    """What the sync and async Redis stores share: counters, envelopes, write outcomes."""

    in_process: bool = False

    def __init__(
        self,
        codec: Codec,
        *,
        key_prefix: str,
        namespace: str,
        wait_replicas: int,
        wait_timeout: float,
        tier: str,
    ) -> None:
        self.namespace = namespace
        self.tier = tier
        self._codec = codec
        self._prefix = key_prefix
        self._wait_replicas = wait_replicas
        self._wait_timeout_ms = max(1, int(wait_timeout * 1000))
        self.hits = self.misses = self.sets = self.deletes = 0
        self.garbled = self.stale_sets_rejected = self.older_writes_rejected = 0
        self.replication_shortfalls = 0

    def _key(self, stored_key: str) -> str:
        return redis_key(self._prefix, stored_key)

    def _lease(self, stored_key: str) -> str:
        return lease_key(self._prefix, stored_key)

    def _document_key(self, name: str) -> str:
        return f"{self._prefix}:doc:{{{self.namespace}}}:{name}"

    def _marks_key(self) -> str:
        # One hash per namespace: one key, one cluster slot, one round trip per read.
        return f"{self._prefix}:marks:{{{self.namespace}}}"

    @staticmethod
    def _claim(raw: Any, token: str) -> tuple[str | None, float]:
        """A ``CLAIM_LEASE`` reply as (our token or None, seconds the holder's lease has left)."""
        won, remaining_ms = int(raw[0]), int(raw[1])
        if won:
            return token, 0.0
        # PTTL -1 (no expiry) cannot come from steadycache; -2 (gone) means "try again now".
        return None, max(0, remaining_ms) / 1000.0

    @staticmethod
    def _ms(seconds: float) -> int:
        return max(1, int(seconds * 1000))

    @staticmethod
    def _counters(raw: list[Any]) -> list[int]:
        return [0 if value is None else int(value) for value in raw]

    def _prefix_patterns(self, prefix: str) -> list[str]:
        return [self._key(prefix).rstrip("}") + "*", self._lease(prefix).rstrip("}") + "*"]

    def _decode(self, key: str, blob: bytes | None) -> Entry | None:
        if blob is None:
            self.misses += 1
            return None
        try:
            entry, payload = unpack_entry(blob, self._codec.codec_id)
            entry.value = self._codec.decode(payload)
        except GarbledEntryError as exc:
            self.garbled += 1
            self.misses += 1
            logger.warning("garbled entry ignored: tier=%s key=%s reason=%s", self.tier, key, exc)
            return None
        self.hits += 1
        return entry

    def _write_arguments(self, key: str, entry: Entry, token: str) -> tuple[list[str], list[Any]]:
        blob = pack_entry(entry, self._codec.encode(entry.value), self._codec.codec_id)
        return [self._key(key), self._lease(key)], [blob, int(entry.stale_until * 1000), token]

    def _note_outcome(self, outcome: WriteOutcome) -> bool:
        """Count a write's outcome; whether replicas should now be waited for."""
        self.sets += 1
        if outcome == LEASE_LOST:
            self.stale_sets_rejected += 1
        elif outcome == OLDER_THAN_STORED:
            self.older_writes_rejected += 1
        return outcome == WRITTEN and self._wait_replicas > 0

    def _note_acknowledged(self, acknowledged: int) -> None:
        if acknowledged < self._wait_replicas:
            self.replication_shortfalls += 1
            logger.warning(
                "redis WAIT: %s of %s replicas acknowledged within %s ms",
                acknowledged,
                self._wait_replicas,
                self._wait_timeout_ms,
            )

    def _stats(self, server: dict[str, int], errors: int) -> StoreStats:
        """This namespace's client counters beside the server's evictions and memory."""
        return StoreStats(
            tier=self.tier,
            hits=self.hits,
            misses=self.misses,
            sets=self.sets,
            deletes=self.deletes,
            evictions=server.get("evicted_keys", -1),
            expirations=server.get("expired_keys", -1),
            rejections=self.stale_sets_rejected + self.older_writes_rejected,
            garbled=self.garbled,
            errors=errors,
            entries=None,  # unknown: see StoreStats.entries
            bytes=server.get("used_memory", -1),
            server_wide=("evictions", "expirations", "bytes"),
        )
