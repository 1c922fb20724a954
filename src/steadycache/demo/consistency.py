"""The consistency scenario: stale reads without invalidation, with events, with the database.

``steadycache consistency`` (``steadycache.cli.consistency``) calls ``run_consistency``. One
seeded workload (``consistency_workload``) runs three times on a fresh copy of the catalogue:

- ``ttl-only``: nothing invalidates; a changed row is served until its entry expires.
- ``events``: the application's paths publish ``hotel.updated`` (in-process through an
  ``EventRouter``, or over the Redis Streams bus when given a URL); the pricing batch and
  the support engineer's SQL do not, so their changes stay stale until the TTL.
- ``database``: no events; the SQLite outbox triggers record every path's changes and a
  poller routes them, so staleness lasts at most one poll interval.

Time is simulated and the run is single-threaded (``consistency_harness``), so a seed gives
the same numbers on any machine. The ground truth is the database itself: every served
value is compared with the row read at that instant on the harness's own connection.
Modules: ``consistency_workload`` (catalogue, write paths, schedule), ``_events`` (router
or Redis bus), ``_harness`` (one mode), ``_results`` (types), ``_report`` (tables, JSON).
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from steadycache.demo.consistency_events import EventTransport
from steadycache.demo.consistency_harness import ModeRun, hotel_policy
from steadycache.demo.consistency_results import (
    MODE_TITLES,
    MODES,
    QUICK,
    AuditFinding,
    ConsistencyConfig,
    ConsistencyReport,
    ModeResult,
)
from steadycache.demo.consistency_workload import PATHS, Workload, WritePath, make_schedule

__all__ = [
    "MODES",
    "MODE_TITLES",
    "PATHS",
    "QUICK",
    "AuditFinding",
    "ConsistencyConfig",
    "ConsistencyReport",
    "ModeResult",
    "Workload",
    "WritePath",
    "hotel_policy",
    "run_consistency",
]


def run_consistency(
    config: ConsistencyConfig | None = None,
    *,
    seed: int = 7,
    modes: Sequence[str] = MODES,
    redis_url: str | None = None,
) -> ConsistencyReport:
    """Run ``modes`` on one seeded workload; every database and stream is removed after.

    ``redis_url`` sends the events mode's events through an ``InvalidationBus`` on that
    Redis instead of routing them in-process (the numbers are the same: delivery is
    awaited after each publish).
    """
    config = config if config is not None else ConsistencyConfig()
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        raise ValueError(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(MODES)}")
    started = time.perf_counter()
    schedule = make_schedule(config.workload, seed)
    transport = EventTransport(redis_url)
    results = []
    writes: Counter[int] = Counter()
    rows: Counter[int] = Counter()
    try:
        for mode in modes:
            with tempfile.TemporaryDirectory(prefix="steadycache-consistency-") as directory:
                run = ModeRun(mode, config, seed, Path(directory), transport)
                try:
                    results.append(run.replay(schedule))
                finally:
                    run.close()
                # The same schedule in every mode: any mode's write counts are the run's.
                writes, rows = run.writes, run.rows
    finally:
        transport.close()
    return ConsistencyReport(
        seed=seed,
        config=config,
        transport=transport.description,
        writes_by_path=dict(sorted(writes.items())),
        rows_by_path=dict(sorted(rows.items())),
        modes=tuple(results),
        seconds=time.perf_counter() - started,
    )
