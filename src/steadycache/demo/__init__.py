"""The booking-incident demo: real queries, a real pool, the cache's policies side by side.

``steadycache demo`` (``steadycache.cli.demo``) calls ``run_demo``; tests call it with
``QUICK``. Needs the ``cli`` extra (SQLAlchemy, rich; matplotlib for ``--plot``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from steadycache.demo.database import BookingDatabase
from steadycache.demo.metrics import ScenarioResult
from steadycache.demo.report import DemoReport
from steadycache.demo.runner import QUICK, DemoConfig, run_scenario
from steadycache.demo.scenarios import SCENARIO_NAMES, SCENARIOS, Scenario, select

__all__ = [
    "QUICK",
    "SCENARIOS",
    "SCENARIO_NAMES",
    "DemoConfig",
    "DemoReport",
    "Scenario",
    "ScenarioResult",
    "run_demo",
]


def run_demo(
    config: DemoConfig | None = None,
    *,
    db_url: str | None = None,
    scenarios: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> DemoReport:
    """Seed the database, measure one query, run the scenarios; everything is torn down."""
    config = config if config is not None else DemoConfig()
    chosen = select(scenarios)
    started = time.perf_counter()
    db = BookingDatabase(db_url, workshops=config.workshops, bookings=config.bookings)
    try:
        db_query_ms = db.median_query_ms()
        results = []
        for scenario in chosen:
            if progress is not None:
                progress(scenario.name)
            results.append(run_scenario(db, scenario, config, db_query_ms))
        database = "SQLite" if db.kind == "sqlite" else "PostgreSQL"
    finally:
        db.close()
    return DemoReport(
        results=tuple(results),
        database=database,
        db_query_ms=db_query_ms,
        speed=config.speed,
        seconds=time.perf_counter() - started,
    )
