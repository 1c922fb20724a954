"""How the consistency scenario's application paths deliver ``hotel.updated``.

Without a Redis URL an event goes straight to the ``EventRouter`` (one process: the
publisher and the cache are the same service). With one it goes through an
``InvalidationBus`` on a stream of this run's own, deleted at the end. The harness then
polls the bus right after each publish: a consumer in another service would see the event
within milliseconds, and waiting for it keeps the simulated run deterministic.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from steadycache.demo.consistency_workload import Publish
from steadycache.invalidation.router import EventRouter


class EventTransport:
    """In-process routing, or the Redis Streams bus when given ``redis_url``."""

    def __init__(self, redis_url: str | None) -> None:
        self._client: Any = None
        self._streams: list[str] = []
        self._run = uuid.uuid4().hex[:12]
        if redis_url is None:
            self.description = "in-process (EventRouter.route); --redis URL for the Redis bus"
            return
        self._client = _connect(redis_url)
        parts = urlsplit(redis_url)
        where = parts.netloc.rsplit("@", 1)[-1] + parts.path  # no credentials
        self.description = f"Redis Streams bus on {where}"

    def connect(self, router: EventRouter) -> Publish:
        """The ``publish`` callable the application's write paths call after each commit."""
        if self._client is None:
            return router.route
        from steadycache.invalidation.bus import InvalidationBus

        stream = f"scdemo-consistency-{self._run}-{len(self._streams)}"
        self._streams.append(stream)
        bus = InvalidationBus(self._client, service=f"scdemo-{self._run}", stream=stream)
        bus.subscribe(router, block=0.0)
        bus.poll_once(block=0)  # creates the group at the stream's end, before any event

        def publish(event: str, payload: Mapping[str, object]) -> object:
            bus.publish(event, payload)
            return bus.poll_once(block=0)

        return publish

    def close(self) -> None:
        """Delete this run's streams (their consumer groups go with them)."""
        if self._client is None:
            return
        try:
            if self._streams:
                self._client.delete(*self._streams)
        finally:
            self._client.close()
            self._client = None


def _connect(url: str) -> Any:
    from steadycache.demo.redis_tier import RedisSetupError

    try:
        import redis
    except ImportError as exc:
        raise RedisSetupError(
            "the Redis bus needs redis-py: pip install 'steadycache[redis]'"
        ) from exc
    try:
        client = redis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=2.0)
    except ValueError as exc:
        raise RedisSetupError(f"--redis {url!r}: {exc}") from exc
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        raise RedisSetupError(f"Redis at {url!r} is not usable: {exc}") from exc
    return client
