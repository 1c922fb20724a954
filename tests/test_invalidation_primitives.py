"""Invalidation by key, tag and namespace generation, in one process (no Redis).

The shared-tier versions (every process, Redis Cluster) are in tests/redis/test_marks.py.
"""

from __future__ import annotations

import threading

import pytest

from steadycache import Cache, InvalidKeyError, Policy, Ttl
from steadycache.errors import UsageError
from steadycache.policy import WriteThrough


def test_a_tag_invalidates_every_entry_carrying_it_and_nothing_else() -> None:
    with Cache() as cache:
        ns = cache.namespace("rooms", Policy(invalidation=Ttl(3600)))
        ns.set("r1", "a", tags=("hotel:1",))
        ns.set("r2", "b", tags=("hotel:1", "city:paris"))
        ns.set("r3", "c", tags=("hotel:2",))
        ns.set("r4", "d")
        assert ns.invalidate_tag("hotel:1") == 1
        assert ns.get_many(["r1", "r2", "r3", "r4"]) == [None, None, "c", "d"]
        assert ns.get_entry("r2") is None
        assert ns.stats().tag_stale_dropped >= 2
        # New writes under the tag are served again: they record the new counter.
        ns.set("r1", "a2", tags=("hotel:1",))
        assert ns.get("r1") == "a2"
        assert ns.get_or_load("r5", lambda: "e", tags=("city:paris",)) == "e"
        ns.invalidate_tag("city:paris")
        assert ns.get_or_load("r5", lambda: "e2", tags=("city:paris",)) == "e2"


def test_a_load_that_began_before_a_tag_invalidation_is_not_served() -> None:
    # The loader reads the source, then the source changes and the tag is invalidated,
    # then the load finishes: its (old) value must not be served afterwards.
    with Cache() as cache:
        ns = cache.namespace("rooms", Policy(invalidation=Ttl(3600)))
        loading, invalidated = threading.Event(), threading.Event()
        source = {"r1": "old"}

        def slow_loader() -> str:
            value = source["r1"]
            loading.set()
            invalidated.wait(5)
            return value

        reader = threading.Thread(
            target=lambda: ns.get_or_load("r1", slow_loader, tags=("hotel:1",))
        )
        reader.start()
        assert loading.wait(5)
        source["r1"] = "new"
        ns.invalidate_tag("hotel:1")
        invalidated.set()
        reader.join(5)
        assert ns.get_or_load("r1", lambda: source["r1"], tags=("hotel:1",)) == "new"


def test_a_delete_during_a_load_is_not_undone_in_process() -> None:
    with Cache() as cache:
        ns = cache.namespace("rooms", Policy(invalidation=Ttl(3600)))
        loading, deleted = threading.Event(), threading.Event()

        def slow_loader() -> str:
            loading.set()
            deleted.wait(5)
            return "old"

        reader = threading.Thread(target=lambda: ns.get_or_load("k", slow_loader))
        reader.start()
        assert loading.wait(5)
        ns.delete("k")
        deleted.set()
        reader.join(5)
        assert ns.get("k") is None
        assert ns.stats().stale_sets_rejected == 1


def test_namespace_generation_makes_every_old_key_unreachable() -> None:
    with Cache() as cache:
        ns = cache.namespace("rooms", Policy(invalidation=Ttl(3600)))
        ns.set_many({f"k{i}": i for i in range(100)})
        before = ns.stored_key("k1")
        assert ns.invalidate_all() == 100  # the in-process copies are dropped at once
        assert ns.stored_key("k1") != before
        assert ns.get_many([f"k{i}" for i in range(100)]) == [None] * 100


def test_bad_tags_are_refused_before_anything_is_written() -> None:
    with Cache() as cache:
        ns = cache.namespace("rooms")
        with pytest.raises(InvalidKeyError, match="tag"):
            ns.invalidate_tag("")
        with pytest.raises(InvalidKeyError, match="tag"):
            ns.invalidate_tag(7)  # type: ignore[arg-type]


def test_write_through_invalidates_by_default_and_updates_when_asked() -> None:
    database: dict[str, str] = {"k": "v0"}
    with Cache() as cache:
        ns = cache.namespace("p", Policy(pattern=WriteThrough(), invalidation=Ttl(3600)))
        assert ns.get_or_load("k", lambda: database["k"]) == "v0"
        ns.write("k", "v1", writer=lambda value: database.__setitem__("k", value))
        assert database["k"] == "v1"
        assert ns.get("k") is None  # invalidated: the next read loads what the source holds
        assert ns.get_or_load("k", lambda: database["k"]) == "v1"
        updating = cache.namespace(
            "u", Policy(pattern=WriteThrough(on_write="update"), invalidation=Ttl(3600))
        )
        updating.write("k", "v2", writer=lambda value: database.__setitem__("k", value))
        assert updating.get("k") == "v2"
        assert updating.stats().writes == 1


def test_write_through_update_beats_a_load_already_in_flight() -> None:
    database = {"k": "old"}
    with Cache() as cache:
        ns = cache.namespace(
            "u", Policy(pattern=WriteThrough(on_write="update"), invalidation=Ttl(3600))
        )
        loading, written = threading.Event(), threading.Event()

        def slow_loader() -> str:
            value = database["k"]  # reads "old"
            loading.set()
            written.wait(5)
            return value

        reader = threading.Thread(target=lambda: ns.get_or_load("k", slow_loader))
        reader.start()
        assert loading.wait(5)
        ns.write("k", "new", writer=lambda value: database.__setitem__("k", value))
        written.set()
        reader.join(5)
        assert ns.get("k") == "new"


def test_a_failing_writer_leaves_the_cache_alone_and_is_counted() -> None:
    def broken(value: object) -> None:
        raise ConnectionError("database down")

    with Cache() as cache:
        ns = cache.namespace("p", Policy(pattern=WriteThrough(), invalidation=Ttl(3600)))
        ns.set("k", "cached")
        with pytest.raises(ConnectionError):
            ns.write("k", "v1", writer=broken)
        assert ns.get("k") == "cached"
        assert ns.stats().write_errors == 1


def test_write_needs_a_write_pattern_and_a_writer() -> None:
    with Cache() as cache:
        aside = cache.namespace("a")
        with pytest.raises(UsageError, match="cache-aside pattern"):
            aside.write("k", 1, writer=lambda value: None)
        through = cache.namespace("t", Policy(pattern=WriteThrough()))
        with pytest.raises(UsageError, match="needs writer"):
            through.write("k", 1)
        updating = cache.namespace("u", Policy(pattern=WriteThrough(on_write="update")))
        written: list[object] = []
        with pytest.raises(TypeError):
            updating.write("k", object(), writer=written.append)
        assert written == []  # refused before the source was written
