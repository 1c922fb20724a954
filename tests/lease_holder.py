"""A process that takes a key's fleet lease and then hangs in its loader, to be SIGKILLed.

    python -m tests.lease_holder REDIS_URL NAMESPACE KEY LEASE_TTL

Prints ``loading`` once its loader runs (it holds the lease then) and sleeps until killed:
what a crashed holder looks like to the rest of the fleet.
"""

from __future__ import annotations

import sys
import time

from steadycache import Cache, RedisBackend
from tests.redis.helpers import shared_policy


def main() -> None:
    url, namespace, key, lease_ttl = sys.argv[1:5]
    cache = Cache(redis=RedisBackend(url))
    ns = cache.namespace(namespace, shared_policy(lease_ttl=float(lease_ttl)))

    def hang() -> object:
        print("loading", flush=True)
        time.sleep(3600)
        return None

    ns.get_or_load(key, hang)


if __name__ == "__main__":
    main()
