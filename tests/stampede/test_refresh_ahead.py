from __future__ import annotations

import time

from steadycache import Cache, Policy, Stampede, Ttl
from steadycache.policy import RefreshAhead
from steadycache.stampede.refresh_ahead import RefreshSchedule
from tests.conftest import ManualClock


def test_schedule_due_at_fraction_of_lifetime_and_forgets_cold_keys() -> None:
    schedule = RefreshSchedule(RefreshAhead(at=0.75, hot_window=100), default_ttl=60, max_keys=10)
    schedule.read("hot", lambda: 1, None, (), now=0.0)
    schedule.read("cold", lambda: 1, None, (), now=0.0)
    schedule.loaded("hot", stored_at=0.0, fresh_until=60.0)
    schedule.loaded("cold", stored_at=0.0, fresh_until=60.0)
    assert schedule.due(44.0) == []
    schedule.read("hot", lambda: 2, None, (), now=44.0)
    assert [key for key, _ in schedule.due(45.0)] == ["hot", "cold"]
    assert schedule.due(46.0) == []  # not again until the reload lands
    schedule.loaded("hot", stored_at=46.0, fresh_until=106.0)
    schedule.read("hot", lambda: 2, None, (), now=140.0)
    due = schedule.due(151.0)  # cold was last read at 0: forgotten after 100 s
    assert [key for key, _ in due] == ["hot"]
    assert len(schedule) == 1


def test_schedule_is_bounded() -> None:
    schedule = RefreshSchedule(RefreshAhead(), default_ttl=60, max_keys=3)
    for i in range(10):
        schedule.read(f"k{i}", lambda: 1, None, (), now=0.0)
    assert len(schedule) == 3


def test_worker_keeps_a_hot_key_fresh_so_no_read_pays_load_latency() -> None:
    # Real time, short TTL: the worker must reload before expiry, every time.
    with Cache() as cache:
        ns = cache.namespace(
            "ra",
            Policy(
                invalidation=Ttl(0.3, jitter=0),
                stampede=Stampede(
                    refresh_ahead=RefreshAhead(at=0.5, check_interval=0.01), early_refresh=None
                ),
            ),
        )
        loads = 0

        def load() -> int:
            nonlocal loads
            loads += 1
            time.sleep(0.01)
            return loads

        ns.get_or_load("k", load)
        slow_reads = 0
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            started = time.monotonic()
            ns.get_or_load("k", load)
            if time.monotonic() - started >= 0.009:
                slow_reads += 1
            time.sleep(0.01)
        stats = ns.stats()
        assert slow_reads == 0
        assert stats.misses == 1  # only the very first read
        assert stats.refresh_ahead >= 4
        assert loads >= 5


def test_cold_key_is_left_to_expire(clock: ManualClock) -> None:
    with Cache(clock=clock) as cache:
        ns = cache.namespace(
            "ra",
            Policy(
                invalidation=Ttl(10, jitter=0),
                stampede=Stampede(refresh_ahead=RefreshAhead(at=0.5, hot_window=5)),
            ),
        )
        ns.get_or_load("k", lambda: 1)
        clock.advance(20)  # never read again: cold
        ns._maintain(clock.now)
        assert ns.stats().refresh_ahead == 0
        assert ns.get("k") is None


def test_key_first_written_with_set_is_refreshed_ahead(clock: ManualClock) -> None:
    with Cache(clock=clock) as cache:
        ns = cache.namespace(
            "ra",
            Policy(
                invalidation=Ttl(60, jitter=0),
                stampede=Stampede(refresh_ahead=RefreshAhead(at=0.75), early_refresh=None),
            ),
        )
        ns.set("k", "batch")  # written by a batch job, not by a load
        clock.advance(10)
        assert ns.get_or_load("k", lambda: "loaded") == "batch"
        clock.advance(36)  # 46 s after the write: past 0.75 x 60 s
        ns._maintain(clock.now)
        cache.close()
        assert ns.stats().refresh_ahead == 1
        assert ns.get("k") == "loaded"


def test_failing_background_refresh_backs_off(clock: ManualClock) -> None:
    from steadycache import StaleWhileRevalidate

    with Cache(clock=clock) as cache:
        ns = cache.namespace(
            "bo",
            Policy(
                invalidation=Ttl(10, jitter=0),
                stampede=Stampede(
                    stale_while_revalidate=StaleWhileRevalidate(60), early_refresh=None
                ),
            ),
        )
        ns.get_or_load("k", lambda: "v1")
        calls = 0

        def broken() -> str:
            nonlocal calls
            calls += 1
            raise ConnectionError("origin down")

        stored = ns.stored_key("k")

        def read_stale() -> None:
            assert ns.get_or_load("k", broken) == "v1"
            while ns._flights.in_flight(stored):  # let the background refresh finish
                time.sleep(0.001)

        clock.advance(11)
        for _ in range(50):  # stale reads: each would start a refresh without a backoff
            read_stale()
        assert calls == 1
        assert ns.stats().refresh_backoffs == 49
        clock.advance(0.3)  # past the first backoff (0.25 s): one more probe
        read_stale()
        read_stale()
        assert calls == 2
