"""``Cache``: the threads' facade, generated from ``_async/cache.py``, plus event routing.

::

    cache = Cache()
    seats = cache.namespace("seats", Policy(pattern=ReadThrough(), invalidation=Ttl(60)))
    free = seats.get_or_load(("workshop", 42), lambda: db.free_seats(42))

    @cache.cached                       # the "default" namespace, Policy()
    def price(sku: str) -> int: ...

    @cache.cached("profile", Policy(...))
    def profile(user_id: int) -> dict: ...
"""

from __future__ import annotations

from steadycache._sync.cache import Cache as GeneratedCache
from steadycache.invalidation.router import EventRouter


class Cache(GeneratedCache):
    """A set of namespaces sharing a clock, a random source and background threads."""

    def event_router(self) -> EventRouter:
        """Routes events and table changes to the namespaces whose policy declares them
        (``Invalidation.triggers``); give it to the bus or a database invalidator.

        Sync only, on purpose: the bus and the database listeners run on threads and
        invalidate synchronously, which an asyncio namespace cannot do."""
        return EventRouter(
            ns for ns in self.namespaces().values() if ns.policy.invalidation.triggers
        )

    def __enter__(self) -> Cache:
        return self


__all__ = ["Cache"]
