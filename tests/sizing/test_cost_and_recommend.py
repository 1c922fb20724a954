"""Prices file, cost model and the size recommendation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from steadycache.sizing.cost import SECONDS_PER_MONTH, estimate_cost, load_prices
from steadycache.sizing.mrc import exact_curve
from steadycache.sizing.readers import Trace
from steadycache.sizing.recommend import recommend
from steadycache.sizing.units import format_bytes, parse_size, parse_sizes


def test_packaged_defaults_load() -> None:
    prices = load_prices()
    assert prices.usd_per_gb_month == 12.0
    assert prices.other_zone_share == 0.5


def test_a_prices_file_overrides_some_keys(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("[memory]\nusd_per_gb_month = 4\n[workload]\nrequests_per_second = 50\n")
    prices = load_prices(path)
    assert prices.usd_per_gb_month == 4.0
    assert prices.requests_per_second == 50.0
    assert prices.cross_zone_usd_per_gb == 0.02


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[memroy]\nusd_per_gb_month = 1\n", "unknown section"),
        ("[memory]\nusd_per_gb = 1\n", "unknown key"),
        ("[memory]\nusd_per_gb_month = 'cheap'\n", "must be a number"),
        ("[network]\nother_zone_share = 2\n", "between 0 and 1"),
        ("[database]\nusd_per_million_queries = -1\n", "negative"),
    ],
)
def test_bad_prices_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_prices(path)


def test_cost_arithmetic() -> None:
    prices = load_prices()
    cost = estimate_cost(
        prices,
        cache_bytes=1e9,
        entries=1e6,
        hit_ratio=0.9,
        mean_value_bytes=1000,
        requests_per_second=100,
    )
    requests = 100 * SECONDS_PER_MONTH
    assert cost.memory_gb == pytest.approx(1.0 + 1e6 * 64 / 1e9)
    assert cost.memory_usd == pytest.approx(cost.memory_gb * 12.0)
    assert cost.database_usd_saved == pytest.approx(requests * 0.9 / 1e6 * 0.5)
    assert cost.cross_zone_usd == pytest.approx(requests * 1000 * 0.5 / 1e9 * 0.02)
    assert cost.net_usd == pytest.approx(
        cost.database_usd_saved - cost.memory_usd - cost.cross_zone_usd
    )


def _looping_trace() -> Trace:
    # 10 keys in a loop, 10 times: LRU needs all 10 to hit; 10 cold misses of 100.
    keys = np.tile(np.arange(10, dtype=np.int64), 10)
    return Trace("loop", keys, np.ones(100, dtype=np.int64), None)


def test_recommendation_applies_headroom() -> None:
    result = recommend(exact_curve(_looping_trace()), 0.9, headroom=0.2)
    assert result.needed_size == 10
    assert result.recommended_size == 12
    assert result.hit_ratio_at_needed == pytest.approx(0.9)
    assert result.reachable


def test_unreachable_target_is_reported() -> None:
    result = recommend(exact_curve(_looping_trace()), 0.95)
    assert not result.reachable
    assert result.recommended_size is None
    assert result.best_hit_ratio == pytest.approx(0.9)


def test_invalid_targets_are_refused() -> None:
    with pytest.raises(ValueError, match="target hit ratio"):
        recommend(exact_curve(_looping_trace()), 1.5)


def test_sizes_parse_objects_and_bytes() -> None:
    assert parse_size("1000") == (1000, False)
    assert parse_size("64MB") == (64_000_000, True)
    assert parse_size("1GiB") == (2**30, True)
    assert parse_sizes("1,2,3") == ([1, 2, 3], False)
    with pytest.raises(ValueError, match="mix"):
        parse_sizes("10,1MB")
    with pytest.raises(ValueError, match="unit"):
        parse_size("5XB")
    assert format_bytes(2_500_000) == "2.50 MB"
