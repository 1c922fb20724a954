"""The booking-incident demo: real queries, a real pool, the cache's policies side by side.

``steadycache demo`` (``steadycache.cli.demo``) calls ``run_demo``; tests call it with
``QUICK``. Needs the ``cli`` extra (SQLAlchemy, rich; matplotlib for ``--plot``), and the
``redis`` extra for a fleet run (``redis_url``, ``workers``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from steadycache.demo.database import BookingDatabase
from steadycache.demo.metrics import ScenarioResult
from steadycache.demo.report import DemoReport, FleetInfo
from steadycache.demo.runner import QUICK, DemoConfig, run_scenario
from steadycache.demo.scenarios import SCENARIO_NAMES, SCENARIOS, Scenario, select

__all__ = [
    "QUICK",
    "SCENARIOS",
    "SCENARIO_NAMES",
    "DemoConfig",
    "DemoReport",
    "FleetInfo",
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
    redis_url: str | None = None,
    workers: int = 1,
) -> DemoReport:
    """Seed the database, measure one query, run the scenarios; everything is torn down.

    With ``redis_url`` every scenario runs on ``workers`` processes sharing an L2 on that
    Redis (``SharedTiers``), each with its own pool of 10; without it, in this process.
    The workers are spawned: a script calling this needs the ``if __name__ ==
    "__main__":`` guard, as for any ``multiprocessing`` program.
    """
    config = config if config is not None else DemoConfig()
    chosen = select(scenarios)
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if workers > 1 and redis_url is None:
        raise ValueError("several workers share their cache through Redis: give redis_url")
    target = None
    flushes_before = None
    if redis_url is not None:
        from steadycache.demo.redis_tier import connect, flush_count

        target = connect(redis_url)  # fails before seeding when Redis is not usable
        flushes_before = flush_count(target)
    started = time.perf_counter()
    db = BookingDatabase(db_url, workshops=config.workshops, bookings=config.bookings)
    try:
        db_query_ms = db.median_query_ms()
        results = []
        for number, scenario in enumerate(chosen, start=1):
            if progress is not None:
                progress(f"{scenario.name} ({number}/{len(chosen)})")
            if target is None:
                results.append(run_scenario(db, scenario, config, db_query_ms))
            else:
                from steadycache.demo.fleet import run_fleet_scenario

                results.append(
                    run_fleet_scenario(db, scenario, config, db_query_ms, target, workers)
                )
        database = "SQLite" if db.kind == "sqlite" else "PostgreSQL"
    finally:
        db.close()
        if target is not None:
            from steadycache.demo.redis_tier import delete_run_keys

            delete_run_keys(target)
    fleet = None
    if target is not None:
        from steadycache.demo.redis_tier import flush_count

        flushes_after = flush_count(target)
        fleet = FleetInfo(
            workers=workers,
            redis=target.display,
            maxmemory=target.maxmemory,
            maxmemory_policy=target.maxmemory_policy,
            note=target.note,
            flushes_during_run=None
            if flushes_before is None or flushes_after is None
            else flushes_after - flushes_before,
        )
    return DemoReport(
        results=tuple(results),
        database=database,
        db_query_ms=db_query_ms,
        speed=config.speed,
        seconds=time.perf_counter() - started,
        fleet=fleet,
    )
