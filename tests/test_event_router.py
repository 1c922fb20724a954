"""Routing events and table changes to the namespaces that declared them (no transport)."""

from __future__ import annotations

import pytest

from steadycache import Cache, ConfigurationError, Invalidation, OnEvent, OnTableChange, Policy, Ttl


def owned(*triggers: OnEvent | OnTableChange) -> Policy:
    return Policy(invalidation=Invalidation(ttl=Ttl(3600), owner="search-team", triggers=triggers))


def test_events_reach_keys_tags_and_whole_namespaces_that_declared_them() -> None:
    with Cache() as cache:
        hotels = cache.namespace("hotels", owned(OnEvent("hotel.updated", keys=("{hotel_id}",))))
        rooms = cache.namespace(
            "rooms", owned(OnEvent("hotel.updated", tags=("hotel:{hotel_id}",)))
        )
        catalog = cache.namespace("catalog", owned(OnEvent("catalog.reloaded")))
        bystander = cache.namespace("bystander")
        hotels.set(7, "h7")
        hotels.set("7", "string key seven")  # a lone {field} keeps the payload's int type
        rooms.set("r1", "room", tags=("hotel:7",))
        rooms.set("r2", "room", tags=("hotel:8",))
        catalog.set("c", 1)
        bystander.set("b", 1)
        router = cache.event_router()
        assert router.events == frozenset({"hotel.updated", "catalog.reloaded"})
        assert router.route("hotel.updated", {"hotel_id": 7}) == 2
        assert hotels.get(7) is None
        assert hotels.get("7") == "string key seven"
        assert rooms.get_many(["r1", "r2"]) == [None, "room"]
        router.route("catalog.reloaded", {})
        assert catalog.get("c") is None
        assert bystander.get("b") == 1
        assert router.route("unknown.event", {}) == 0
        assert router.counters.unrouted == 1


def test_a_payload_missing_a_field_flushes_the_namespace_and_is_counted() -> None:
    with Cache() as cache:
        rooms = cache.namespace("rooms", owned(OnEvent("hotel.updated", tags=("hotel:{id}",))))
        rooms.set("r1", "room", tags=("hotel:9",))
        router = cache.event_router()
        router.route("hotel.updated", {"hotel": 9})
        assert rooms.get("r1") is None
        assert router.counters.missing_fields == 1
        assert router.counters.flushes == 1


def test_one_table_reports_one_set_of_key_columns() -> None:
    with Cache() as cache:
        cache.namespace("a", owned(OnTableChange("hotels", key_columns=("id",))))
        cache.namespace("b", owned(OnTableChange("hotels", key_columns=("id", "city"))))
        with pytest.raises(ConfigurationError, match="key_columns"):
            cache.event_router()
