"""The demo's qualitative outcomes on a quick run: the incident fails, the defaults hold.

One module-scoped run (about 20 s) feeds every test. Only outcomes that do not depend on
the machine's speed are asserted: no absolute latencies.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import replace

import pytest
from rich.console import Console

from steadycache.demo import QUICK, SCENARIO_NAMES, DemoConfig, DemoReport, run_demo
from steadycache.demo.report import render, results_named, verdict

JSON_KEYS = {
    "name",
    "hot_keys",
    "requests",
    "db_queries",
    "db_queries_per_hot_key_expiry",
    "peak_db_concurrency",
    "pool_timeouts",
    "errors",
    "stale_served",
    "p50_ms",
    "p99_ms",
    "max_ms",
    "db_query_ms",
}


@pytest.fixture(scope="module")
def report() -> Iterator[DemoReport]:
    # The incident logs one warning per failed load; the test asserts on counts instead.
    logger = logging.getLogger("steadycache")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield run_demo(QUICK)
    finally:
        logger.setLevel(previous)


def test_json_has_every_scenario_with_the_documented_keys(report: DemoReport) -> None:
    document = json.loads(report.as_json())
    assert list(document) == ["scenarios"]
    assert [row["name"] for row in document["scenarios"]] == list(SCENARIO_NAMES)
    assert SCENARIO_NAMES == (
        "incident",
        "jitter",
        "single_flight",
        "early_expiration",
        "refresh_ahead",
        "defaults",
        "cold_deploy",
        "cold_deploy_warm",
    )
    for row in document["scenarios"]:
        assert set(row) == JSON_KEYS


def test_incident_exhausts_the_pool(report: DemoReport) -> None:
    incident = results_named(report.results, "incident")
    # Every burst miss went to the database: its query either ran or timed out waiting
    # for one of the pool's connections (the pool ran dry, as in the incident).
    assert incident.db_queries + incident.pool_timeouts >= 5 * incident.hot_keys
    assert incident.pool_timeouts > 0
    assert incident.errors > 0
    assert incident.peak_db_concurrency == 10


def test_defaults_hold_one_query_per_hot_key_and_no_errors(report: DemoReport) -> None:
    defaults = results_named(report.results, "defaults")
    assert defaults.requests == QUICK.burst
    assert defaults.db_queries_per_hot_key_expiry <= 1.0
    assert defaults.pool_timeouts == 0
    assert defaults.errors == 0


@pytest.mark.parametrize("name", ["single_flight", "early_expiration", "refresh_ahead"])
def test_each_fix_keeps_the_pool(report: DemoReport, name: str) -> None:
    result = results_named(report.results, name)
    assert result.db_queries_per_hot_key_expiry <= 1.0
    assert result.pool_timeouts == 0
    assert result.errors == 0


def test_refresh_ahead_reloads_before_anyone_waits(report: DemoReport) -> None:
    assert results_named(report.results, "refresh_ahead").waited_for_load == 0


def test_warm_up_prevents_the_cold_deploy_failure(report: DemoReport) -> None:
    cold = results_named(report.results, "cold_deploy")
    warm = results_named(report.results, "cold_deploy_warm")
    assert cold.pool_timeouts > 0
    assert warm.pool_timeouts == 0
    assert warm.errors == 0
    assert warm.waited_for_load == 0


def test_plot_writes_a_png(report: DemoReport, tmp_path: pytest.TempPathFactory) -> None:
    from steadycache.demo.plot import write_plot

    path = tmp_path / "timeline.png"  # type: ignore[operator]
    write_plot(report, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_run_ends_with_a_verdict(report: DemoReport) -> None:
    lines = verdict(report)
    assert lines[0].startswith("Under the incident's configuration, ")
    assert "That is the outage." in lines[0]
    assert lines[1] == (
        "The same spike under steadycache's defaults: 1 query per hot key per expiry, 0 errors."
    )
    assert lines[2].startswith("The fix is the default: Policy(")


def test_the_verdict_says_when_the_incident_did_not_reproduce(report: DemoReport) -> None:
    calm = replace(results_named(report.results, "incident"), errors=0, pool_timeouts=0)
    lines = verdict(replace(report, results=(calm,)))
    assert lines == [lines[0]]
    assert lines[0].startswith("The incident did not reproduce this run: no request failed")


def test_the_table_fits_80_columns(report: DemoReport) -> None:
    console = Console(width=80, record=True)
    render(report, console)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    for name in SCENARIO_NAMES:
        assert name in text  # no scenario name is cut short
    assert "Verdict." in text


def test_quick_is_quicker_but_keeps_the_spike() -> None:
    full = DemoConfig()
    assert QUICK.burst == full.burst  # the pool's capacity is a count: the spike stays
    assert QUICK.speed > full.speed
    assert QUICK.cold_keys < full.cold_keys
    assert QUICK.warm_concurrency > full.warm_concurrency
