"""The demo against PostgreSQL (``--db postgresql://...``): the same story on a real server.

PostgreSQL runs on 127.0.0.1:5432 on this kind of machine and in CI; missing, the test fails.
"""

from __future__ import annotations

import logging

from steadycache.demo import QUICK, run_demo
from steadycache.demo.report import results_named

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"  # as typed after --db


def test_incident_and_defaults_on_postgresql() -> None:
    logger = logging.getLogger("steadycache")
    previous = logger.level
    logger.setLevel(logging.ERROR)  # the incident logs one warning per failed load
    try:
        report = run_demo(QUICK, db_url=POSTGRES_URL, scenarios=["incident", "defaults"])
    finally:
        logger.setLevel(previous)
    assert report.database == "PostgreSQL"
    incident = results_named(report.results, "incident")
    defaults = results_named(report.results, "defaults")
    # The incident sends the whole spike at the database; the defaults send one query a key.
    assert incident.db_queries + incident.pool_timeouts >= 5 * incident.hot_keys
    assert defaults.db_queries_per_hot_key_expiry <= 1.0
    assert defaults.pool_timeouts == 0
    assert defaults.errors == 0
