"""Single-flight: a burst of misses on one key runs its loader once, whatever the outcome.

The burst is tasks on one event loop here and threads started behind a barrier in the
generated twin (``tests.concurrency``): the same callers, in flight together.
"""

from __future__ import annotations

import pytest

from steadycache import (
    AsyncCache,
    LoaderError,
    LoadTimeoutError,
    Policy,
    SingleFlight,
    StaleIfError,
    Stampede,
    Ttl,
)
from tests.concurrency import (
    AsyncBackground,
    AsyncSignal,
    failing_async,
    gather_async,
    held_async,
    outcomes_async,
    returning_async,
)
from tests.conftest import ManualClock

#: The burst sizes of the thread suite and of the asyncio suite these tests merge.
BURSTS = [200, 300]
ERROR_BURSTS = [50, 100]


@pytest.mark.parametrize("callers", BURSTS)
async def test_concurrent_misses_run_the_loader_once(callers: int) -> None:
    async with AsyncCache() as cache:
        ns = cache.namespace("sf")
        calls: list[int] = []
        load = returning_async(5, calls, delay=0.05)
        results = await gather_async([lambda: ns.get_or_load("hot", load)] * callers)
        assert results == [5] * callers
        assert len(calls) == 1
        assert ns.stats().coalesced == callers - 1


@pytest.mark.parametrize("callers", ERROR_BURSTS)
async def test_loader_error_reaches_every_waiter_and_is_not_cached(callers: int) -> None:
    async with AsyncCache() as cache:
        ns = cache.namespace("sf")
        calls: list[int] = []
        broken = failing_async(ConnectionError("db down"), calls, delay=0.05)
        results = await outcomes_async([lambda: ns.get_or_load("hot", broken)] * callers)
        assert len(calls) == 1
        assert all(isinstance(r, LoaderError) for r in results)
        assert all(isinstance(getattr(r, "__cause__", None), ConnectionError) for r in results)
        # Distinct exception objects: tracebacks of different callers don't mix.
        assert len({id(r) for r in results}) == callers
        assert await ns.get_or_load("hot", returning_async(1)) == 1


async def test_waiters_get_stale_on_error_within_bound(clock: ManualClock) -> None:
    async with AsyncCache(clock=clock) as cache:
        ns = cache.namespace(
            "sf",
            Policy(
                invalidation=Ttl(10, jitter=0),
                stampede=Stampede(stale_if_error=StaleIfError(60), early_refresh=None),
            ),
        )
        await ns.get_or_load("hot", returning_async("old"))
        clock.advance(11)
        calls: list[int] = []
        broken = failing_async(ConnectionError("db down"), calls, delay=0.05)
        results = await gather_async([lambda: ns.get_or_load("hot", broken)] * 100)
        assert len(calls) == 1
        assert results == ["old"] * 100


async def test_bounded_wait(clock: ManualClock) -> None:
    async with AsyncCache(clock=clock) as cache:
        ns = cache.namespace(
            "sf", Policy(stampede=Stampede(single_flight=SingleFlight(wait_timeout=0.05)))
        )
        loading, release = AsyncSignal(), AsyncSignal()
        slow = held_async(1, loading, release)
        leader = AsyncBackground(lambda: ns.get_or_load("k", slow))
        assert await loading.wait()
        with pytest.raises(LoadTimeoutError, match="wait_timeout"):
            await ns.get_or_load("k", slow)
        release.set()
        assert await leader.result() == 1
        assert ns.stats().wait_timeouts == 1


async def test_without_single_flight_every_miss_loads() -> None:
    async with AsyncCache() as cache:
        ns = cache.namespace(
            "nosf", Policy(stampede=Stampede(single_flight=None, early_refresh=None))
        )
        calls: list[int] = []
        load = returning_async(1, calls, delay=0.05)
        await gather_async([lambda: ns.get_or_load("hot", load)] * 50)
        assert len(calls) == 50


async def test_a_load_that_lands_between_read_and_flight_is_not_repeated() -> None:
    # A reader saw a miss; before it joined a flight, another caller's load landed and its
    # flight ended. The reader must use that value, not load a second time.
    async with AsyncCache() as cache:
        ns = cache.namespace("sf")
        stored = ns.stored_key("k")
        assert await ns.get_entry("k") is None  # the late reader's view
        await ns.get_or_load("k", returning_async("first"))  # someone else's load lands
        calls: list[int] = []
        second = returning_async("second", calls)
        assert await ns._load(stored, second, None, None, ()) == "first"
        assert calls == []
