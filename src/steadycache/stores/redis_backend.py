"""``RedisBackend`` (generated from ``stores/_async/redis.py``) and the shared pure parts.

See ``stores/redis_common.py`` for URLs, server checks and the breaker's bookkeeping.
"""

from __future__ import annotations

from steadycache.stores._sync.redis import RedisBackend
from steadycache.stores.redis_clients import make_client
from steadycache.stores.redis_common import (
    RedisUrl,
    ServerReport,
    admit,
    config_forbidden_report,
    evaluate_server_config,
    failure,
    lease_key,
    normalise_config,
    parse_url,
    redis_key,
    sum_server_info,
)

__all__ = [
    "RedisBackend",
    "RedisUrl",
    "ServerReport",
    "admit",
    "config_forbidden_report",
    "evaluate_server_config",
    "failure",
    "lease_key",
    "make_client",
    "normalise_config",
    "parse_url",
    "redis_key",
    "sum_server_info",
]
