from __future__ import annotations

import math
from collections.abc import Callable

from steadycache._core.entry import Entry
from steadycache._core.freshness import (
    Action,
    can_serve_stale_on_error,
    decide,
    lifetimes,
    should_refresh_early,
)
from steadycache.policy import EarlyRefresh, StaleIfError, StaleWhileRevalidate, Stampede, Ttl


def entry(fresh_until: float, stale_until: float | None = None, load_cost: float = 0.0) -> Entry:
    return Entry(
        "v",
        stored_at=0.0,
        fresh_until=fresh_until,
        stale_until=fresh_until if stale_until is None else stale_until,
        load_cost=load_cost,
    )


def constant(value: float) -> Callable[[], float]:
    return lambda: value


def never() -> float:
    raise AssertionError("no random number should be drawn")


def test_missing_and_dead_entries_load() -> None:
    stampede = Stampede()
    assert decide(None, 0.0, stampede, never) is Action.LOAD
    assert decide(entry(10.0), 10.0, stampede, never) is Action.LOAD


def test_fresh_entry_far_from_expiry_is_served_without_drawing() -> None:
    assert decide(entry(100.0, load_cost=0.05), 1.0, Stampede(), never) is Action.SERVE


def test_xfetch_probability_follows_the_formula() -> None:
    early = EarlyRefresh(beta=1.0)
    item = entry(fresh_until=10.0, load_cost=1.0)
    # gap 2 s, scale 1 s: refresh iff -ln(U) >= 2, i.e. U <= e^-2 ~ 0.135.
    assert should_refresh_early(item, 8.0, early, lambda: 0.13)
    assert not should_refresh_early(item, 8.0, early, lambda: 0.14)
    # beta scales the window: with beta 2, U <= e^-1 ~ 0.368.
    assert should_refresh_early(item, 8.0, EarlyRefresh(beta=2.0), lambda: 0.36)
    assert not should_refresh_early(item, 8.0, EarlyRefresh(beta=2.0), lambda: 0.37)
    # A zero draw (ln 0 = -inf) means refresh now; zero load cost never refreshes early.
    assert should_refresh_early(item, 8.0, early, lambda: 0.0)
    assert not should_refresh_early(entry(10.0, load_cost=0.0), 9.999, early, lambda: 1e-9)


def test_xfetch_rate_rises_as_expiry_nears() -> None:
    early = EarlyRefresh()
    item = entry(fresh_until=10.0, load_cost=0.5)
    draws = [i / 1000 for i in range(1, 1001)]

    def rate(now: float) -> float:
        hits = sum(should_refresh_early(item, now, early, constant(d)) for d in draws)
        return hits / len(draws)

    rates = [rate(now) for now in (7.0, 8.0, 9.0, 9.9)]
    assert rates == sorted(rates)
    assert math.isclose(rate(9.0), math.exp(-2), abs_tol=0.002)


def test_stale_while_revalidate_window() -> None:
    stampede = Stampede(stale_while_revalidate=StaleWhileRevalidate(5), early_refresh=None)
    item = entry(fresh_until=10.0, stale_until=15.0)
    assert decide(item, 12.0, stampede, never) is Action.SERVE_STALE_AND_REFRESH
    assert decide(item, 15.0, stampede, never) is Action.LOAD


def test_stale_if_error_window() -> None:
    stampede = Stampede(stale_if_error=StaleIfError(30))
    item = entry(fresh_until=10.0, stale_until=40.0)
    assert decide(item, 20.0, stampede, never) is Action.LOAD
    assert can_serve_stale_on_error(item, 20.0, stampede)
    assert not can_serve_stale_on_error(item, 40.0, stampede)
    assert not can_serve_stale_on_error(item, 20.0, Stampede())
    assert not can_serve_stale_on_error(None, 20.0, stampede)


def test_jitter_spreads_lifetimes_within_bound() -> None:
    ttl = Ttl(60, jitter=0.1)
    stampede = Stampede(stale_if_error=StaleIfError(30))
    fresh_low, stale_low = lifetimes(0.0, ttl, stampede, lambda: 1.0)
    fresh_high, _ = lifetimes(0.0, ttl, stampede, lambda: 0.0)
    assert math.isclose(fresh_low, 54.0)
    assert fresh_high == 60.0
    assert stale_low == fresh_low + 30
    assert lifetimes(0.0, ttl, stampede, lambda: 0.0, ttl_override=5)[0] == 5.0
    assert lifetimes(0.0, Ttl(60, jitter=0), stampede, never)[0] == 60.0


def test_xfetch_never_fires_before_its_window() -> None:
    # A load cost measured under contention (30 s of a 60 s lifetime) must not make the
    # entry refresh at the start of its life: only the last quarter is eligible.
    item = entry(fresh_until=60.0, load_cost=30.0)
    early = EarlyRefresh()
    assert not should_refresh_early(item, 44.0, early, lambda: 1e-9)
    assert should_refresh_early(item, 46.0, early, lambda: 0.5)
    assert should_refresh_early(item, 16.0, EarlyRefresh(window=1.0), lambda: 0.2)
