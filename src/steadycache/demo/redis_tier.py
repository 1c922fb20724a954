"""The demo's shared tier: which Redis, what the server said, which keys are the demo's.

Every scenario of a run writes under its own key prefix (``scdemo-<run>-<scenario>``), so
one scenario never finds another's entries or leases and the cleanup deletes exactly
what the run wrote, whatever else lives in that database.

The eviction decision: steadycache refuses a Redis whose ``maxmemory-policy`` is
``noeviction`` (when memory is full every cache write fails), unless the namespace accepts
it. The demo accepts it, explicitly and visibly: it writes a few hundred small entries,
each with an expiry, and deletes them at the end, so it cannot be what fills the server;
the report prints what the server runs with, so nobody mistakes this for advice.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from steadycache.errors import CacheError
from steadycache.policy import Policy, SharedTiers
from steadycache.stores.redis_backend import RedisBackend

#: The demo's own decision for its throw-away keys (see the module docstring).
ACCEPT_NOEVICTION = True
_DELETE_BATCH = 500


class RedisSetupError(ValueError):
    """``--redis`` names a server the demo cannot use (unreachable, bad URL, refused)."""


@dataclass(frozen=True)
class RedisTarget:
    """The Redis a fleet run shares, this run's id, and what the server reported."""

    url: str
    run_id: str
    maxmemory: int | None
    maxmemory_policy: str | None

    @property
    def display(self) -> str:
        """``host:port/db`` without credentials (for the table and the JSON)."""
        parts = urlsplit(self.url)
        return parts.netloc.rsplit("@", 1)[-1] + parts.path

    def key_prefix(self, scenario: str) -> str:
        """The key prefix of one scenario of this run."""
        return f"scdemo-{self.run_id}-{scenario}"

    @property
    def note(self) -> str:
        """What the server runs with, and what the demo decided about it."""
        limit = "no limit" if not self.maxmemory else f"{self.maxmemory} bytes"
        found = f"maxmemory {limit}, maxmemory-policy {self.maxmemory_policy or 'unreadable'}"
        if self.maxmemory_policy == "noeviction":
            return (
                f"{found}. steadycache refuses noeviction by default; the demo accepts it "
                "(Eviction(accept_redis_noeviction=True)) for its few hundred expiring keys, "
                "deleted at the end. A production cache wants allkeys-lru/lfu and a maxmemory."
            )
        return found


def connect(url: str) -> RedisTarget:
    """Reach the server, read its eviction settings, start a run id; or ``RedisSetupError``."""
    try:
        backend = RedisBackend(url, command_timeout=2.0, connect_timeout=2.0)
    except CacheError as exc:
        raise RedisSetupError(f"--redis {url!r}: {exc}") from exc
    try:
        report = backend.check_server(accept_noeviction=ACCEPT_NOEVICTION)
        backend.call("PING", backend.client.ping)
    except CacheError as exc:
        raise RedisSetupError(f"Redis at {url!r} is not usable: {exc}") from exc
    finally:
        backend.close()
    return RedisTarget(url, uuid.uuid4().hex[:12], report.maxmemory, report.maxmemory_policy)


def flush_count(target: RedisTarget) -> int | None:
    """How many FLUSHDB/FLUSHALL the server has run (None if INFO is unavailable).

    Key prefixes keep the demo's keys apart from everyone else's, but a flush by another
    client (a test suite sharing the database) still deletes them mid-scenario: the
    demo compares this count before and after and says so rather than print bad numbers.
    """
    backend = RedisBackend(target.url, command_timeout=2.0, connect_timeout=2.0)
    try:
        stats = backend.call("INFO", backend.client.info, "commandstats")
    except CacheError:
        return None
    finally:
        backend.close()
    return sum(
        int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))
        for command in ("flushdb", "flushall")
    )


def shared_policy(policy: Policy) -> Policy:
    """``policy`` with the shared Redis tier: L1 per process, L2 and leases in Redis.

    A policy without single-flight (the incident's) gets no leases either: leases are
    fleet-wide single-flight."""
    return policy.replace(
        consistency=SharedTiers(leases=policy.stampede.single_flight is not None),
        eviction=dataclasses.replace(policy.eviction, accept_redis_noeviction=ACCEPT_NOEVICTION),
    )


def delete_run_keys(target: RedisTarget) -> int:
    """Delete every key this run wrote (all scenarios' entries and leases); how many."""
    backend = RedisBackend(target.url, command_timeout=2.0, connect_timeout=2.0)
    client = backend.client
    deleted = 0
    try:
        keys = list(client.scan_iter(match=f"scdemo-{target.run_id}-*", count=_DELETE_BATCH))
        for start in range(0, len(keys), _DELETE_BATCH):
            deleted += int(client.delete(*keys[start : start + _DELETE_BATCH]))
    finally:
        backend.close()
    return deleted
