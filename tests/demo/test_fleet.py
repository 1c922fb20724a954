"""The fleet run: two worker processes sharing an L2 on this session's own Redis.

Only the outcomes that do not depend on the machine's speed are asserted:

- defaults: fleet-wide single-flight (leases) keeps every pool: no pool timeouts, no
  errors, no stampede, and one query per hot key per expiry fleet-wide (what leases
  promise: a process that wins a lease just after another one loaded uses that value);
- incident: every spike request that misses queries the database, so queries are many
  times the hot keys, and both pools run full at once (a fleet peak above one pool's 10,
  never above the two pools' 20). Pool timeouts are likely but depend on CPU speed: on a
  fast machine two pools of 10 can drain 250 requests each within the 1 s timeout.

The demo deletes only its own keys (prefix ``scdemo-<run>-``), never flushes; the test checks
that it left none and that nothing flushed the server during the run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import redis
from typer.testing import CliRunner

from steadycache.demo import QUICK, DemoReport, run_demo
from steadycache.demo.report import results_named
from tests.redis_servers import RedisServer

WORKERS = 2


@pytest.fixture(scope="module")
def fleet_report(plain_redis_session: RedisServer) -> Iterator[DemoReport]:
    logger = logging.getLogger("steadycache")
    previous = logger.level
    logger.setLevel(logging.ERROR)  # the parent's maxmemory=0 warning; workers log nothing
    try:
        yield run_demo(
            QUICK,
            scenarios=["incident", "defaults"],
            redis_url=plain_redis_session.url,
            workers=WORKERS,
        )
    finally:
        logger.setLevel(previous)


def test_run_was_not_disturbed_and_left_no_keys(
    fleet_report: DemoReport, plain_redis_session: RedisServer
) -> None:
    assert fleet_report.fleet is not None
    assert fleet_report.fleet.flushes_during_run == 0
    with redis.Redis.from_url(plain_redis_session.url) as client:
        assert list(client.scan_iter(match="scdemo-*", count=1000)) == []


def test_json_adds_workers_and_redis_and_keeps_the_rows(
    fleet_report: DemoReport, plain_redis_session: RedisServer
) -> None:
    document = json.loads(fleet_report.as_json())
    assert list(document) == ["workers", "redis", "scenarios"]
    assert document["workers"] == WORKERS
    assert document["redis"]["server"] == f"127.0.0.1:{plain_redis_session.port}"
    assert {row["name"] for row in document["scenarios"]} == {"incident", "defaults"}


def test_defaults_keep_every_pool_fleet_wide(fleet_report: DemoReport) -> None:
    defaults = results_named(fleet_report.results, "defaults")
    assert defaults.requests == QUICK.burst  # the spike, split across the workers
    assert defaults.pool_timeouts == 0
    assert defaults.errors == 0
    # No stampede: at most one refresh per hot key per worker (the incident does >= 5).
    assert defaults.db_queries_per_hot_key_expiry <= WORKERS


def test_defaults_one_query_per_hot_key_per_expiry_fleet_wide(
    fleet_report: DemoReport,
) -> None:
    defaults = results_named(fleet_report.results, "defaults")
    assert defaults.db_queries_per_hot_key_expiry <= 1.0


def test_incident_floods_every_pool(fleet_report: DemoReport) -> None:
    incident = results_named(fleet_report.results, "incident")
    assert incident.requests == QUICK.burst
    # Every burst miss went to the database: its query either ran or timed out waiting
    # for one of the pool's connections (the pool ran dry, as in the incident).
    assert incident.db_queries + incident.pool_timeouts >= 5 * incident.hot_keys
    assert 10 < incident.peak_db_concurrency <= 10 * WORKERS


def test_cli_refuses_workers_without_redis() -> None:
    import steadycache.cli.commands  # noqa: F401  (registers every sub-command)
    from steadycache.cli import app

    result = CliRunner().invoke(app, ["demo", "--workers", "2"], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert "--redis" in result.output
