"""The shared store on Redis/Valkey: envelopes under versioned, leased writes.

Each entry is one binary envelope (``_core/entry.py``) stored with ``PXAT stale_until``, so
the server drops what can never be served. Writes go through one Lua script that:

- refuses to overwrite a newer version with an older one, but only when the stored entry
  proves it is one: same magic, format and codec as the new envelope, and a digest the
  script recomputes (``redis.sha1hex``). A corrupt, truncated or foreign value never wins
  a comparison, so the next load replaces it; the digest is only computed in the rare case
  where the stored version would refuse the write;
- with a lease token, writes only while that lease is still held: a delete removes the
  lease too, so a load that began before an invalidation cannot put its old value back
  (the "stale set" race that Facebook's memcache leases close). Whatever the outcome of a
  leased write (written or refused as older), the lease is released in the same script.

Leases are ``SET lease NX PX`` with a random token, claimed by a script that also says how
long the current holder's lease has left (so a waiter knows when it may take over), renewed
while their load runs (``leases.py``) and released by compare-and-delete.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, Final

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
from steadycache.errors import GarbledEntryError
from steadycache.stores.base import StoreStats, WriteOutcome
from steadycache.stores.redis_backend import RedisBackend, lease_key, redis_key

logger = logging.getLogger("steadycache")

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
            entries=-1,
            bytes=server.get("used_memory", -1),
            server_wide=("evictions", "expirations", "bytes"),
        )


class RedisStore(RedisStoreBase):
    """One namespace's entries in Redis. Thread-safe (redis-py pools connections)."""

    def __init__(
        self,
        backend: RedisBackend,
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

    def get(self, key: str, now: float | None = None) -> Entry | None:
        # The server expires entries by its own clock: ``now`` is not needed.
        blob = self.backend.call("GET", self._client.get, self._key(key))
        return self._decode(key, blob)

    def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        if not keys:
            return []
        redis_keys = [self._key(key) for key in keys]
        # A cluster spreads these keys over slots: mget_nonatomic splits by slot.
        fetch = self._client.mget_nonatomic if self.backend.is_cluster else self._client.mget
        blobs = self.backend.call("MGET", fetch, redis_keys)
        return [self._decode(key, blob) for key, blob in zip(keys, blobs, strict=True)]

    # --- writes ---------------------------------------------------------------------------

    def set(self, key: str, entry: Entry) -> None:
        self._write(key, entry, "")

    def set_leased(self, key: str, entry: Entry, token: str) -> bool:
        """Write only while ``token`` still holds the key's lease; whether it was written."""
        return self.write_leased(key, entry, token) is WRITTEN

    def write_leased(self, key: str, entry: Entry, token: str) -> WriteOutcome:
        """Write while ``token`` holds the key's lease; the lease is gone afterwards."""
        return self._write(key, entry, token)

    def _write(self, key: str, entry: Entry, token: str) -> WriteOutcome:
        keys, args = self._write_arguments(key, entry, token)
        outcome = WriteOutcome(int(self.backend.run_script("SET", SET_VERSIONED, keys, args)))
        if self._note_outcome(outcome):
            self._wait_for_replicas(keys[0])
        return outcome

    def _wait_for_replicas(self, redis_key: str) -> None:
        wait = self._client.wait
        if self.backend.is_cluster:
            node = self._client.get_node_from_key(redis_key)
            acknowledged = self.backend.call(
                "WAIT",
                self._client.execute_command,
                "WAIT",
                self._wait_replicas,
                self._wait_timeout_ms,
                target_nodes=node,
            )
        else:
            acknowledged = self.backend.call(
                "WAIT", wait, self._wait_replicas, self._wait_timeout_ms
            )
        self._note_acknowledged(int(acknowledged))

    def set_many(self, items: Mapping[str, Entry]) -> None:
        for key, entry in items.items():
            self.set(key, entry)

    def delete(self, key: str) -> bool:
        # The lease goes too: an in-flight load must not write its pre-delete value.
        removed = self.backend.call("DEL", self._client.delete, self._key(key), self._lease(key))
        self.deletes += 1
        return int(removed) > 0

    def delete_many(self, keys: Sequence[str]) -> int:
        return sum(self.delete(key) for key in keys)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every entry (and lease) whose stored key starts with ``prefix``."""
        removed = 0
        for pattern in self._prefix_patterns(prefix):
            keys = self.backend.call(
                "SCAN", lambda p=pattern: list(self._client.scan_iter(match=p, count=500))
            )
            for key in keys:
                removed += int(self.backend.call("DEL", self._client.delete, key))
        return removed

    def clear(self) -> None:
        """Delete every entry of this store's namespace (all generations)."""
        self.delete_prefix(f"{self.namespace}:")

    # --- leases ---------------------------------------------------------------------------

    def acquire_lease(self, key: str, ttl: float) -> str | None:
        """A token when this process now holds the key's lease, else None."""
        return self.claim_lease(key, ttl)[0]

    def claim_lease(self, key: str, ttl: float) -> tuple[str | None, float]:
        """Take the key's lease: (token, 0) when won, else (None, seconds the holder has left)."""
        token = secrets.token_hex(12)
        raw = self.backend.run_script(
            "CLAIM", CLAIM_LEASE, [self._lease(key)], [token, self._ms(ttl)]
        )
        return self._claim(raw, token)

    def renew_lease(self, key: str, token: str, ttl: float) -> bool:
        """Give a lease still held by ``token`` another ``ttl``; False once it is not ours."""
        renewed = self.backend.run_script(
            "RENEW", RENEW_LEASE, [self._lease(key)], [token, self._ms(ttl)]
        )
        return bool(int(renewed))

    def release_lease(self, key: str, token: str) -> None:
        """Give the lease back if still ours (compare-and-delete)."""
        self.backend.run_script("RELEASE", RELEASE_LEASE, [self._lease(key)], [token])

    def put_document(self, name: str, text: str) -> None:
        """Keep a small document of this namespace (a hot-key snapshot) for the fleet."""
        self.backend.call(
            "SET", self._client.set, self._document_key(name), text, ex=DOCUMENT_TTL_SECONDS
        )

    def get_document(self, name: str) -> str | None:
        """A document kept by ``put_document``, or None."""
        raw = self.backend.call("GET", self._client.get, self._document_key(name))
        return None if raw is None else bytes(raw).decode(errors="replace")

    def lease_held(self, key: str) -> bool:
        """Whether some process holds the key's lease."""
        return bool(self.backend.call("EXISTS", self._client.exists, self._lease(key)))

    # --- invalidation marks -----------------------------------------------------------------

    def read_marks(self, fields: Sequence[str]) -> list[int]:
        """The namespace's counters for ``fields`` (0 where never moved)."""
        raw = self.backend.call("HMGET", self._client.hmget, self._marks_key(), list(fields))
        return self._counters(raw)

    def move_mark(self, field: str, floor: int, step: int = 1) -> int:
        """Move a counter to ``max(stored, floor) + step``; the new value."""
        return int(
            self.backend.run_script("MARK", MOVE_MARK, [self._marks_key()], [field, floor, step])
        )

    # --- introspection --------------------------------------------------------------------

    def stats(self) -> StoreStats:
        """This namespace's client counters beside the server's evictions and memory."""
        return self._stats(self.backend.recent_server_stats(), self.backend.errors)

    def close(self) -> None:
        """The backend owns the connections; nothing to release per namespace."""
