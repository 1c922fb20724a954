"""The consistency scenario on a small catalogue: what the demo exists to show must hold.

Stale reads fall from ttl-only to events to database; what events leave stale, and what the
auditor finds, was written by the paths that publish no event; the outbox covers every row
of every path, within one poll interval. Numbers are compared with each other and with the
run's own settings, never with constants, so a change in the workload keeps the tests valid.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from steadycache.cli import _register_commands, app
from steadycache.demo.consistency import (
    MODES,
    PATHS,
    ConsistencyConfig,
    ConsistencyReport,
    Workload,
    run_consistency,
)
from steadycache.demo.consistency_report import as_document
from tests.redis_servers import HOST

SMALL = ConsistencyConfig(
    workload=Workload(hotels=60, duration=300.0, reads_per_second=20.0, pricing_batch_every=60.0),
    ttl=120.0,
)
SEED = 11
SILENT = {path.number for path in PATHS if not path.publishes}
PUBLISHING = {path.number for path in PATHS if path.publishes}

runner = CliRunner()


@pytest.fixture(autouse=True)
def quiet_auditor() -> Iterator[None]:
    # The auditor logs every stale entry it finds (hundreds in ttl-only); tests count them.
    logger = logging.getLogger("steadycache")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)


@pytest.fixture(scope="module")
def report() -> ConsistencyReport:
    return run_consistency(SMALL, seed=SEED)


def numbers(report: ConsistencyReport) -> dict[str, Any]:
    document = as_document(report)
    del document["seconds"]  # wall time, the one thing a seed does not fix
    return document


def test_the_scenario_has_the_five_paths_of_the_issue() -> None:
    assert [path.number for path in PATHS] == [1, 2, 3, 4, 5]
    assert {3, 4} == SILENT  # the pricing batch and the support engineer's SQL


def test_every_mode_replays_the_same_reads(report: ConsistencyReport) -> None:
    assert [result.mode for result in report.modes] == list(MODES)
    assert len({result.reads for result in report.modes}) == 1
    assert set(report.writes_by_path) == {path.number for path in PATHS}
    # The batch is bulk: one UPDATE changes many rows.
    assert report.rows_by_path[3] > report.writes_by_path[3]


def test_stale_reads_fall_from_ttl_only_to_events_to_database(report: ConsistencyReport) -> None:
    ttl_only, events, database = (report.mode(name) for name in MODES)
    assert ttl_only.stale_reads > events.stale_reads > database.stale_reads
    assert database.stale_read_rate < 0.01
    assert events.stale_reads > 0  # fewer, not none: two paths publish nothing
    # Without invalidation a change is served until its entry expires, never beyond.
    assert report.config.poll_interval < ttl_only.max_stale_age <= report.config.ttl
    # With the outbox, only until the next poll.
    assert 0 < database.max_stale_age <= report.config.poll_interval


def test_events_leave_stale_only_what_the_silent_paths_wrote(report: ConsistencyReport) -> None:
    ttl_only, events = report.mode("ttl-only"), report.mode("events")
    assert set(ttl_only.stale_reads_by_path) & PUBLISHING  # what events then fix
    assert events.stale_reads_by_path
    assert set(events.stale_reads_by_path) <= SILENT


def test_auditor_offenders_in_events_mode_were_written_by_paths_3_and_4(
    report: ConsistencyReport,
) -> None:
    events = report.mode("events")
    assert events.offender_keys
    assert events.findings
    assert {finding.path for finding in events.findings} <= SILENT
    # Every key on the auditor's list is explained by a finding the harness blamed.
    assert set(events.offender_keys) <= {finding.hotel_id for finding in events.findings}
    assert len(events.findings) == events.audit_stale


def test_auditor_stale_rate_falls_with_the_stale_reads(report: ConsistencyReport) -> None:
    ttl_only, events, database = (report.mode(name) for name in MODES)
    assert ttl_only.audit_stale_rate > events.audit_stale_rate > database.audit_stale_rate
    assert all(result.audited > 0 for result in report.modes)


def test_database_findings_were_changes_still_in_the_outbox(report: ConsistencyReport) -> None:
    database = report.mode("database")
    assert all(f.since_write <= report.config.poll_interval for f in database.findings)


def test_invalidations_count_events_and_outbox_rows(report: ConsistencyReport) -> None:
    ttl_only, events, database = (report.mode(name) for name in MODES)
    assert ttl_only.invalidations == 0
    # One key per event; one key per changed row of every path through the triggers.
    assert events.invalidations == sum(report.rows_by_path[path] for path in PUBLISHING)
    assert database.invalidations == sum(report.rows_by_path.values())


def test_the_seed_decides_the_numbers(report: ConsistencyReport) -> None:
    assert numbers(run_consistency(SMALL, seed=SEED)) == numbers(report)
    assert numbers(run_consistency(SMALL, seed=SEED + 1)) != numbers(report)


def test_redis_bus_delivers_the_same_invalidations_as_in_process(
    report: ConsistencyReport, redis_url: str
) -> None:
    url = redis_url
    over_bus = run_consistency(SMALL, seed=SEED, modes=("events",), redis_url=url)
    assert over_bus.transport.startswith("Redis Streams bus on ")
    assert over_bus.mode("events") == report.mode("events")
    with redis.Redis.from_url(url) as client:
        assert not list(client.scan_iter(match="scdemo-consistency-*"))  # stream deleted


def test_cli_json_shows_the_ordering_and_the_blame() -> None:
    _register_commands()
    result = runner.invoke(app, ["consistency", "--json", "--quick", "--seed", "3"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["seed"] == 3
    modes = {mode["mode"]: mode for mode in document["modes"]}
    assert list(modes) == list(MODES)
    stale = [modes[name]["stale_reads"] for name in MODES]
    assert stale == sorted(stale, reverse=True)
    assert len(set(stale)) == len(stale)
    offenders = modes["events"]["top_offenders"]
    assert offenders
    assert {row["last_written_by"] for row in offenders} <= SILENT
    assert {int(path) for path in modes["events"]["audit"]["stale_findings_by_path"]} <= SILENT
    assert modes["database"]["max_stale_age_seconds"] <= document["poll_interval_seconds"]
    assert modes["database"]["stale_read_rate"] < 0.01


def test_cli_table_names_every_mode_and_the_offenders() -> None:
    _register_commands()
    result = runner.invoke(app, ["consistency", "--quick"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    for name in MODES:
        assert f"{name}: the auditor's top offenders" in result.output or (
            f"{name}: the auditor found no stale entry" in result.output
        )
    assert "3 pricing-batch" in result.output
    assert "events in-process" in result.output


def test_cli_refuses_an_unreachable_redis() -> None:
    _register_commands()
    result = runner.invoke(app, ["consistency", "--quick", "--redis", f"redis://{HOST}:1/0"])
    assert result.exit_code == 2
    assert "--redis" in result.output
