"""Every counter the README names for a namespace is in ``ns.stats()`` (sync and async)."""

from __future__ import annotations

from pathlib import Path

from steadycache import AsyncCache, AsyncRedisBackend, Cache, Policy, RedisBackend
from steadycache.policy import WriteBehind
from tests.redis.helpers import shared_policy

#: Named in the README as what ``ns.stats()`` of a namespace with shared tiers counts.
SHARED_TIER_COUNTERS = (
    "garbled",
    "fallbacks",
    "resyncs",
    "backplane_disconnects",
    "backplane_publish_errors",
    "replication_shortfalls",
    "stale_sets_rejected",
    "older_writes_rejected",
    "redis_errors",
    "breaker_rejections",
    "store_errors",
    "invalidations",
    "deletes",
)
WRITE_BEHIND_COUNTERS = ("journaled", "write_errors", "appends_at_risk", "lost_entries")


def test_shared_tier_counters_are_in_stats(standalone_url: str) -> None:
    with Cache(redis=RedisBackend(standalone_url)) as cache:
        ns = cache.namespace("n", shared_policy())
        ns.set("k", 1)
        counters = ns.stats().counters
        missing = [name for name in SHARED_TIER_COUNTERS if name not in counters]
        assert missing == []
        assert ns.stats().fallbacks == 0


async def test_shared_tier_counters_are_in_async_stats(standalone_url: str) -> None:
    async with AsyncCache(redis=AsyncRedisBackend(standalone_url)) as cache:
        ns = cache.namespace("n", shared_policy())
        await ns.set("k", 1)
        counters = ns.stats().counters
        assert [name for name in SHARED_TIER_COUNTERS if name not in counters] == []


def test_write_behind_counters_are_in_stats(tmp_path: Path) -> None:
    with Cache() as cache:
        ns = cache.namespace(
            "orders", Policy(pattern=WriteBehind(sqlite_path=str(tmp_path / "journal.db")))
        )
        counters = ns.stats().counters
        assert [name for name in WRITE_BEHIND_COUNTERS if name not in counters] == []


def test_readme_names_only_counters_that_exist() -> None:
    root = Path(__file__).resolve().parents[2]
    readme = "\n".join(
        page.read_text() for page in (root / "README.md", *root.glob("docs/**/*.md"))
    )
    for name in (*SHARED_TIER_COUNTERS, *WRITE_BEHIND_COUNTERS):
        if name in ("backplane_disconnects", "backplane_publish_errors"):
            continue  # reachable, not advertised
        assert f"`{name}`" in readme, f"{name} is counted but no page of the docs says so"
