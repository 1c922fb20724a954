"""The invalidation bus against real Redis: this session's own servers (``redis_url``, and
one more for the outage test). Events travel through a real stream into real caches."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from steadycache import Cache, Eviction, Policy, ReadThrough, Stampede, Ttl
from steadycache.errors import ConfigurationError, SerializationError, UsageError
from steadycache.invalidation import EventRouter
from steadycache.invalidation.bus import InvalidationBus
from steadycache.invalidation.router import InvalidationTarget
from steadycache.namespace import Namespace
from steadycache.policy import Invalidation, OnEvent, SharedTiers
from steadycache.stores.redis_backend import RedisBackend
from tests.redis_servers import RedisServer

STREAM = "test:events"

HOTEL_KEYS = OnEvent("hotel.updated", keys=("{id}",))
HOTEL_TAGS = OnEvent("hotel.updated", tags=("hotel:{id}",))
CATALOG_RELOADED = OnEvent("catalog.reloaded")


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url, socket_timeout=5.0) as conn:
        yield conn


@pytest.fixture
def caches() -> Iterator[Callable[[], Cache]]:
    made: list[Cache] = []

    def make() -> Cache:
        made.append(Cache())
        return made[-1]

    yield make
    for cache in made:
        cache.close()


def policy(*triggers: OnEvent) -> Policy:
    return Policy(invalidation=Invalidation(ttl=Ttl(300), owner="catalog-team", triggers=triggers))


def consumer(
    conn: redis.Redis, service: str, router: EventRouter, **options: object
) -> InvalidationBus:
    """A subscribed bus whose group exists (created by its first poll)."""
    bus = InvalidationBus(conn, service=service, stream=STREAM, **options)  # type: ignore[arg-type]
    bus.subscribe(router, consumer=f"{service}-1", block=0.05)
    bus.poll_once(block=0)
    return bus


def publisher(conn: redis.Redis, maxlen: int = 100_000) -> InvalidationBus:
    return InvalidationBus(conn, service="catalog", stream=STREAM, maxlen=maxlen)


# redis-py types replies as "Awaitable | Any" (one signature for sync and async clients).


def pending(conn: redis.Redis, group: str) -> int:
    reply: Any = conn.xpending(STREAM, group)
    return int(reply["pending"])


def stream_ids(conn: redis.Redis) -> list[str]:
    entries: Any = conn.xrange(STREAM)
    return [entry_id.decode() for entry_id, _ in entries]


def wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


# --- routing --------------------------------------------------------------------------------


def test_events_invalidate_keys_with_their_type_and_whole_namespaces(
    client: redis.Redis, caches: Callable[[], Cache]
) -> None:
    cache = caches()
    hotels = cache.namespace("hotels", policy(HOTEL_KEYS))
    catalog = cache.namespace("catalog", policy(CATALOG_RELOADED))
    untouched = cache.namespace("prices")
    bus = consumer(client, "web", EventRouter(cache.namespaces().values()))
    for key in (7, "7", 8):
        hotels.set(key, {"hotel": key})
    catalog.set("all", [1, 2])
    untouched.set(7, "kept")

    entry_id = publisher(client).publish("hotel.updated", {"id": 7})
    assert stream_ids(client) == [entry_id]
    assert bus.poll_once(block=0) == 1
    # The int id stayed an int through JSON: key 7 went, key "7" (another key) stayed.
    assert hotels.get(7) is None
    assert hotels.get("7") == {"hotel": "7"}
    assert hotels.get(8) == {"hotel": 8}
    assert catalog.get("all") == [1, 2]

    publisher(client).publish("catalog.reloaded")
    assert bus.poll_once(block=0) == 1
    assert catalog.get("all") is None
    assert hotels.get(8) == {"hotel": 8}
    assert untouched.get(7) == "kept"
    assert (bus.counters.received, bus.counters.routed, bus.counters.failures) == (2, 2, 0)
    assert pending(client, "web") == 0


def test_events_invalidate_tags(client: redis.Redis, caches: Callable[[], Cache]) -> None:
    cache = caches()
    search = cache.namespace("search", policy(HOTEL_TAGS))
    search.set(("q", "rome"), [7, 9], tags=("hotel:7", "hotel:9"))
    search.set(("q", "oslo"), [8], tags=("hotel:8",))
    bus = consumer(client, "search", EventRouter([search]))
    publisher(client).publish("hotel.updated", {"id": 9})
    assert bus.poll_once(block=0) == 1
    assert search.get(("q", "rome")) is None
    assert search.get(("q", "oslo")) == [8]


def test_each_service_receives_every_event(
    client: redis.Redis, caches: Callable[[], Cache]
) -> None:
    web_cache, search_cache = caches(), caches()
    web_hotels = web_cache.namespace("hotels", policy(HOTEL_KEYS))
    search_hotels = search_cache.namespace("hotels", policy(HOTEL_KEYS))
    web = consumer(client, "web", EventRouter([web_hotels]))
    search = consumer(client, "search", EventRouter([search_hotels]))
    for hotel in (1, 2, 3):
        web_hotels.set(hotel, "cached")
        search_hotels.set(hotel, "cached")
        publisher(client).publish("hotel.updated", {"id": hotel})
    assert web.poll_once(block=0) == 3
    assert search.poll_once(block=0) == 3
    for hotel in (1, 2, 3):
        assert web_hotels.get(hotel) is None
        assert search_hotels.get(hotel) is None
    assert web.counters.routed == search.counters.routed == 3


def test_one_process_of_a_service_gets_each_event_unless_it_has_its_own_group(
    client: redis.Redis, caches: Callable[[], Cache]
) -> None:
    first, second = caches(), caches()
    routers = [
        EventRouter([cache.namespace("hotels", policy(HOTEL_KEYS))]) for cache in (first, second)
    ]
    shared = [InvalidationBus(client, service="web", stream=STREAM) for _ in routers]
    own = [InvalidationBus(client, service="web", stream=STREAM) for _ in routers]
    for index, (bus, router) in enumerate(zip(shared, routers, strict=True)):
        bus.subscribe(router, consumer=f"web-{index}", block=0)
        bus.poll_once()
    for index, (bus, router) in enumerate(zip(own, routers, strict=True)):
        bus.subscribe(router, consumer="p", group=f"web:host:{index}", block=0)
        bus.poll_once()
    publisher(client).publish("hotel.updated", {"id": 1})
    assert sum(bus.poll_once() for bus in shared) == 1  # one process of the service
    assert [bus.poll_once() for bus in own] == [1, 1]  # every process (LocalOnly L1s)


# --- catching up and recovering ------------------------------------------------------------


def test_a_stopped_consumer_catches_up_on_what_it_missed(
    client: redis.Redis, caches: Callable[[], Cache]
) -> None:
    cache = caches()
    hotels = cache.namespace("hotels", policy(HOTEL_KEYS))
    router = EventRouter([hotels])
    bus = InvalidationBus(client, service="web", stream=STREAM)
    bus.subscribe(router, block=0.05)
    bus.start()
    wait_for(lambda: bool(client.exists(STREAM)))  # the group exists once the stream does
    hotels.set(1, "old")
    publisher(client).publish("hotel.updated", {"id": 1})
    wait_for(lambda: hotels.get(1) is None)
    bus.stop()

    for hotel in range(2, 12):
        hotels.set(hotel, "old")
        publisher(client).publish("hotel.updated", {"id": hotel})
    hotels.set(99, "not named by any event")
    assert all(hotels.get(hotel) == "old" for hotel in range(2, 12))  # nobody listening

    restarted = InvalidationBus(client, service="web", stream=STREAM)
    restarted.subscribe(router, block=0.05)
    restarted.start()
    try:
        wait_for(lambda: restarted.counters.routed == 10)
    finally:
        restarted.stop()
    assert all(hotels.get(hotel) is None for hotel in range(2, 12))
    assert hotels.get(99) == "not named by any event"
    assert restarted.counters.gaps == 0
    assert router.counters.flushes == 0


class Crash(BaseException):
    """The process dying: not an ``Exception``, so nothing in the bus handles it."""


class CrashAfterRouting:
    """A router that routes, then kills the process before the bus can acknowledge."""

    def __init__(self, router: EventRouter) -> None:
        self.router = router

    def route(self, event: str, payload: Mapping[str, object]) -> int:
        self.router.route(event, payload)
        raise Crash

    def invalidate_everything(self, reason: str) -> int:
        return self.router.invalidate_everything(reason)

    @property
    def targets(self) -> list[InvalidationTarget]:
        return self.router.targets


def test_a_crash_between_routing_and_ack_is_rerouted_on_restart(
    client: redis.Redis, caches: Callable[[], Cache]
) -> None:
    cache = caches()
    hotels = cache.namespace("hotels", policy(HOTEL_KEYS))
    router = EventRouter([hotels])
    crashing = InvalidationBus(client, service="web", stream=STREAM)
    crashing.subscribe(CrashAfterRouting(router), consumer="web-a", block=0)
    crashing.poll_once()
    hotels.set(5, "old")
    publisher(client).publish("hotel.updated", {"id": 5})
    with pytest.raises(Crash):
        crashing.poll_once()
    assert hotels.get(5) is None  # routed...
    assert pending(client, "web") == 1  # ...but never acknowledged

    hotels.set(5, "written again by a racing reader")  # so the re-route is visible
    restarted = InvalidationBus(client, service="web", stream=STREAM)
    restarted.subscribe(router, consumer="web-a", block=0)
    assert restarted.poll_once() == 1
    assert hotels.get(5) is None
    assert pending(client, "web") == 0
    assert restarted.counters.routed == 1


def test_entries_left_by_a_dead_consumer_are_claimed(
    client: redis.Redis, caches: Callable[[], Cache]
) -> None:
    cache = caches()
    hotels = cache.namespace("hotels", policy(HOTEL_KEYS))
    router = EventRouter([hotels])
    dead = InvalidationBus(client, service="web", stream=STREAM)
    dead.subscribe(CrashAfterRouting(router), consumer="web-dead", block=0)
    dead.poll_once()
    publisher(client).publish("hotel.updated", {"id": 5})
    with pytest.raises(Crash):
        dead.poll_once()
    hotels.set(5, "old")

    peer = InvalidationBus(client, service="web", stream=STREAM)
    peer.subscribe(router, consumer="web-live", block=0, claim_idle=0.05)
    assert peer.poll_once() == 0  # not idle long enough yet: the owner may be alive
    assert hotels.get(5) == "old"
    time.sleep(0.1)
    assert peer.poll_once() == 1
    assert hotels.get(5) is None
    assert (peer.counters.claimed, pending(client, "web")) == (1, 0)


def test_events_trimmed_while_a_service_was_down_flush_everything(
    client: redis.Redis, caches: Callable[[], Cache]
) -> None:
    cache = caches()
    hotels = cache.namespace("hotels", policy(HOTEL_KEYS))
    catalog = cache.namespace("catalog", policy(CATALOG_RELOADED))
    untouched = cache.namespace("prices")
    router = EventRouter(cache.namespaces().values())
    bus = consumer(client, "web", router)
    hotels.set(7, "old")
    catalog.set("all", "old")
    untouched.set(7, "kept")

    # Down while 500 events went by with a cap of 10: event 7 is trimmed unread.
    source = publisher(client, maxlen=10)
    for hotel in range(500):
        source.publish("hotel.updated", {"id": 1000 + hotel if hotel else 7})
    assert len(stream_ids(client)) < 500

    bus.poll_once(block=0)
    assert bus.counters.gaps == 1
    assert hotels.get(7) is None  # its event was lost; the flush covered it
    assert catalog.get("all") is None  # flushed too: every namespace with triggers
    assert untouched.get(7) == "kept"  # no triggers: not the bus's to flush
    hotels.set(8, "new")
    while bus.poll_once(block=0):
        pass
    assert bus.counters.gaps == 1  # one gap, one flush
    assert hotels.get(8) == "new"


def test_a_consumer_within_the_cap_sees_no_gap(
    client: redis.Redis, caches: Callable[[], Cache]
) -> None:
    cache = caches()
    hotels = cache.namespace("hotels", policy(HOTEL_KEYS))
    bus = consumer(client, "web", EventRouter([hotels]))
    source = publisher(client, maxlen=10)
    for round_ in range(5):
        for hotel in range(8):
            source.publish("hotel.updated", {"id": round_ * 8 + hotel})
        hotels.set("kept", 1)
        assert bus.poll_once(block=0) == 8
    assert (bus.counters.gaps, hotels.get("kept")) == (0, 1)


def test_a_stream_deleted_under_a_running_consumer_flushes_and_recovers(
    client: redis.Redis, caches: Callable[[], Cache]
) -> None:
    cache = caches()
    hotels = cache.namespace("hotels", policy(HOTEL_KEYS))
    bus = consumer(client, "web", EventRouter([hotels]))
    hotels.set(1, "old")
    client.delete(STREAM)
    bus.poll_once(block=0)
    assert (bus.counters.gaps, hotels.get(1)) == (1, None)
    hotels.set(2, "old")
    publisher(client).publish("hotel.updated", {"id": 2})
    assert bus.poll_once(block=0) == 1
    assert hotels.get(2) is None
    assert bus.counters.gaps == 1


# --- bad input and failures ---------------------------------------------------------------


def test_a_payload_missing_a_field_flushes_the_namespace(
    client: redis.Redis, caches: Callable[[], Cache]
) -> None:
    cache = caches()
    hotels = cache.namespace("hotels", policy(HOTEL_KEYS))
    router = EventRouter([hotels])
    bus = consumer(client, "web", router)
    hotels.set(1, "old")
    hotels.set(2, "old")
    publisher(client).publish("hotel.updated", {"hotel_id": 1})
    assert bus.poll_once(block=0) == 1
    assert (hotels.get(1), hotels.get(2)) == (None, None)
    assert (router.counters.missing_fields, router.counters.flushes) == (1, 1)
    assert (bus.counters.routed, pending(client, "web")) == (1, 0)


@pytest.mark.parametrize(
    ("event", "payload", "error", "message"),
    [
        ("", {}, UsageError, "empty"),
        (" hotel.updated", {}, UsageError, "whitespace"),
        ("hotel\nupdated", {}, UsageError, "control"),
        ("x" * 201, {}, UsageError, "over the limit"),
        (42, {}, UsageError, "is a str, got int"),
        ("hotel.updated", [("id", 1)], UsageError, "mapping"),
        ("hotel.updated", {1: 2}, UsageError, "field name 1"),
        ("hotel.updated", {"id": object()}, SerializationError, "field 'id'"),
        ("hotel.updated", {"price": float("nan")}, SerializationError, "field 'price'"),
        ("hotel.updated", {"blob": "x" * 70_000}, SerializationError, "send ids"),
    ],
)
def test_malformed_events_are_refused_before_anything_is_written(
    client: redis.Redis, event: object, payload: object, error: type[Exception], message: str
) -> None:
    bus = publisher(client)
    with pytest.raises(error, match=message):
        bus.publish(event, payload)  # type: ignore[arg-type]
    assert not client.exists(STREAM)
    assert bus.counters.published == 0


def test_an_unreadable_entry_flushes_every_namespace(
    client: redis.Redis, caches: Callable[[], Cache]
) -> None:
    cache = caches()
    hotels = cache.namespace("hotels", policy(HOTEL_KEYS))
    bus = consumer(client, "web", EventRouter([hotels]))
    hotels.set(1, "old")
    client.xadd(STREAM, {"v": "1", "event": "hotel.updated", "payload": "[1, 2]"})
    client.xadd(STREAM, {"something": "else"})
    assert bus.poll_once(block=0) == 2
    assert hotels.get(1) is None
    assert (bus.counters.malformed, pending(client, "web")) == (2, 0)


class FailingTarget:
    """A namespace whose invalidations fail ``failures`` times (a store outage), then work."""

    def __init__(self, namespace: Namespace, failures: int) -> None:
        self.namespace = namespace
        self.failures = failures
        self.name = namespace.name
        self.policy = namespace.policy

    def invalidate(self, key: object, *, scope: Mapping[str, object] | None = None) -> bool:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("store unavailable")
        return self.namespace.invalidate(key, scope=scope)

    def invalidate_tag(self, tag: str) -> int:
        raise AssertionError("no tag triggers here")

    def invalidate_all(self) -> int:
        return self.namespace.invalidate_all()


def test_a_failed_route_stays_pending_and_is_retried(
    client: redis.Redis, caches: Callable[[], Cache]
) -> None:
    hotels = caches().namespace("hotels", policy(HOTEL_KEYS))
    bus = InvalidationBus(client, service="web", stream=STREAM)
    bus.subscribe(EventRouter([FailingTarget(hotels, 2)]), block=0, retry_after=0.05)
    bus.poll_once()
    hotels.set(1, "old")
    hotels.set(2, "old")
    publisher(client).publish("hotel.updated", {"id": 1})
    bus.poll_once()
    assert (bus.counters.failures, pending(client, "web")) == (1, 1)
    assert bus.poll_once() == 0  # not due yet: no spinning on a failing store
    time.sleep(0.06)
    bus.poll_once()  # second failure
    time.sleep(0.06)
    bus.poll_once()  # works
    assert (bus.counters.failures, bus.counters.routed, bus.counters.abandoned) == (2, 1, 0)
    assert (hotels.get(1), hotels.get(2)) == (None, "old")  # only the named key
    assert pending(client, "web") == 0


def test_a_route_failing_every_attempt_flushes_its_namespaces_and_is_acknowledged(
    client: redis.Redis, caches: Callable[[], Cache]
) -> None:
    cache = caches()
    hotels = cache.namespace("hotels", policy(HOTEL_KEYS))
    other = cache.namespace("other", policy(CATALOG_RELOADED))
    router = EventRouter([FailingTarget(hotels, 1_000), other])
    bus = InvalidationBus(client, service="web", stream=STREAM)
    bus.subscribe(router, block=0, retry_after=0, max_attempts=3)
    bus.poll_once()
    hotels.set(1, "old")
    hotels.set(2, "old")
    other.set(1, "kept")
    publisher(client).publish("hotel.updated", {"id": 1})
    for _ in range(3):
        bus.poll_once()
    assert (bus.counters.failures, bus.counters.abandoned, bus.counters.routed) == (3, 1, 0)
    assert (hotels.get(1), hotels.get(2)) == (None, None)  # the whole namespace
    assert other.get(1) == "kept"  # not a target of the event
    assert pending(client, "web") == 0


def test_configuration_mistakes_fail_loudly(client: redis.Redis, redis_url: str) -> None:
    with pytest.raises(ConfigurationError, match="service name"):
        InvalidationBus(client, service="")
    with pytest.raises(ConfigurationError, match="maxlen"):
        InvalidationBus(client, service="web", maxlen=0)
    bus = InvalidationBus(client, service="web", stream=STREAM)
    with pytest.raises(UsageError, match="subscribe"):
        bus.poll_once()
    with (
        redis.Redis.from_url(redis_url, socket_timeout=0.5) as short,
        pytest.raises(ConfigurationError, match="socket_timeout"),
    ):
        InvalidationBus(short, service="web").subscribe(EventRouter([]), block=1.0)
    bus.subscribe(EventRouter([]))
    with pytest.raises(UsageError, match="already subscribed"):
        bus.subscribe(EventRouter([]))


# --- shared tiers and outages -------------------------------------------------------------


def shared_hotels_policy() -> Policy:
    return Policy(
        pattern=ReadThrough(),
        invalidation=Invalidation(ttl=Ttl(300), owner="catalog-team", triggers=(HOTEL_KEYS,)),
        consistency=SharedTiers(),
        eviction=Eviction(accept_redis_noeviction=True),
        stampede=Stampede(),
    )


def test_one_consumer_invalidation_reaches_every_process_l1(
    client: redis.Redis, redis_url: str
) -> None:
    # Two processes of the "web" service, sharing Redis; only the first runs a consumer.
    with (
        Cache(redis=RedisBackend(redis_url)) as first,
        Cache(redis=RedisBackend(redis_url)) as second,
    ):
        a = first.namespace("hotels", shared_hotels_policy())
        b = second.namespace("hotels", shared_hotels_policy())
        for cache in (first, second):
            cache.start()
            assert cache.backplane is not None
            assert cache.backplane.wait_subscribed(2.0)
        bus = consumer(client, "web", EventRouter([a]))
        a.set(3, "old")
        assert b.get(3) == "old"
        stored = b.stored_key(3)
        assert b.store.local.peek(stored) is not None  # type: ignore[attr-defined]

        publisher(client).publish("hotel.updated", {"id": 3})
        assert bus.poll_once(block=0) == 1
        wait_for(lambda: b.store.local.peek(stored) is None)  # type: ignore[attr-defined]
        assert b.get(3) is None
        assert a.get(3) is None


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of our own that this test stops and restarts; AOF keeps the stream across."""
    server = RedisServer(tmp_path, name="bus", args=["--appendonly", "yes"])
    try:
        server.start()
        yield server
    finally:
        server.close()


def test_the_consumer_reconnects_after_an_outage_and_catches_up(
    own_server: RedisServer, caches: Callable[[], Cache]
) -> None:
    hotels = caches().namespace("hotels", policy(HOTEL_KEYS))
    with (
        # No client-side retries: the bus's own backoff is under test, not redis-py's.
        own_server.client(
            socket_timeout=1.0, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
        ) as conn,
        own_server.client(socket_timeout=1.0) as publishing,
    ):
        bus = InvalidationBus(conn, service="web", stream=STREAM)
        bus.subscribe(EventRouter([hotels]), block=0.05)
        bus.start()
        try:
            wait_for(lambda: bool(publishing.exists(STREAM)))
            own_server.stop()
            wait_for(lambda: bus.counters.connection_errors >= 1)
            own_server.start()
            hotels.set(4, "old")
            publisher(publishing).publish("hotel.updated", {"id": 4})
            wait_for(lambda: hotels.get(4) is None, timeout=10.0)
        finally:
            bus.stop()
    assert bus.counters.reconnects >= 1
    assert (bus.counters.routed, bus.counters.gaps) == (1, 0)
