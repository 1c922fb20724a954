"""A fleet run: each scenario served by N worker processes sharing one Redis tier.

The parent seeds the database (``run_demo``) and, per scenario, starts N fresh worker
processes (``worker.py``), steps them through the phases together, and merges what they
measured into one row: database queries, pool timeouts and errors summed over the fleet,
the peak of queries in flight across all processes (``FleetGauge``), latencies pooled.

Workers are started with ``spawn``: a forked child would inherit the parent's threads'
locks (rich's status line, SQLAlchemy's pool) in whatever state they were in.
"""

from __future__ import annotations

import math
import multiprocessing
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from steadycache.demo.clock import CompressedClock
from steadycache.demo.database import BookingDatabase
from steadycache.demo.metrics import EventKind, FleetGauge, FleetTotals, ScenarioResult
from steadycache.demo.redis_tier import RedisTarget
from steadycache.demo.runner import DemoConfig, scenario_result
from steadycache.demo.scenarios import TTL_SECONDS, Scenario
from steadycache.demo.worker import WarmOutcome, WorkerOutcome, WorkerPlan, run_worker

#: Real seconds a phase may take before the run is declared stuck (start-up includes
#: importing SQLAlchemy and redis in every process; a cold warm-up loads 500 keys).
_PHASE_TIMEOUT = 120.0
#: Real seconds between "go" and the cold spike, so every worker is asleep waiting for it.
_COLD_RELEASE_DELAY = 0.2


class WorkerFailedError(RuntimeError):
    """A worker process raised, died or stopped answering."""


def run_fleet_scenario(
    db: BookingDatabase,
    scenario: Scenario,
    config: DemoConfig,
    db_query_ms: float,
    target: RedisTarget,
    workers: int,
) -> ScenarioResult:
    """Run ``scenario`` on ``workers`` processes against ``db`` and the Redis ``target``."""
    context = multiprocessing.get_context("spawn")
    gauge = FleetGauge(context)
    fleet = _Fleet(context, gauge)
    try:
        for index in range(workers):
            plan = WorkerPlan(
                scenario=scenario.name,
                config=config,
                db_url=db.url,
                db_schema=db.schema,
                redis_url=target.url,
                key_prefix=target.key_prefix(scenario.name),
                index=index,
                workers=workers,
            )
            fleet.start(plan)
        fleet.collect("ready")
        clock = CompressedClock.anchored(config.cold_speed if scenario.cold else config.speed)
        fleet.broadcast(("start", clock.epoch))
        primed = fleet.collect("primed")
        if scenario.cold:
            burst_at = clock() + _COLD_RELEASE_DELAY * clock.speed
        else:
            last_write = max(reply[0] for reply in primed if reply[0] is not None)
            burst_at = last_write + TTL_SECONDS + config.burst_delay
        fleet.broadcast(("go", burst_at))
        outcomes: list[WorkerOutcome] = [reply[0] for reply in fleet.collect("done")]
    finally:
        fleet.stop()
    warms = [reply[1] for reply in primed if reply[1] is not None]
    return _merge(scenario, config, db_query_ms, outcomes, gauge.peak, warms)


def _merge(
    scenario: Scenario,
    config: DemoConfig,
    db_query_ms: float,
    outcomes: list[WorkerOutcome],
    peak: int,
    warms: list[WarmOutcome],
) -> ScenarioResult:
    totals = FleetTotals(
        db_queries=sum(outcome.db_queries for outcome in outcomes),
        peak_db_concurrency=peak,
        pool_timeouts=sum(outcome.pool_timeouts for outcome in outcomes),
        errors=sum(outcome.errors for outcome in outcomes),
    )
    timeline: list[tuple[float, EventKind]] = []
    for outcome in outcomes:
        timeline.extend(outcome.timeline)
    if scenario.cold:
        expiries = 1
    else:
        started = min(outcome.started_at for outcome in outcomes)
        ended = max(outcome.ended_at for outcome in outcomes)
        expiries = max(1, math.floor((ended - started) / TTL_SECONDS))
    notes = ""
    if warms:
        notes = (
            f"warm() in each of {len(warms)} workers: "
            f"{sum(w.loaded for w in warms)}/{sum(w.requested for w in warms)} keys, "
            f"slowest {max(w.seconds for w in warms):.2f} s real, "
            f"{sum(w.failed for w in warms)} failed"
        )
    return scenario_result(
        scenario,
        config.cold_keys if scenario.cold else config.hot_keys,
        totals,
        [latency for outcome in outcomes for latency in outcome.latencies],
        db_query_ms,
        expiries=expiries,
        waited=sum(outcome.waited for outcome in outcomes),
        stale=sum(outcome.stale for outcome in outcomes),
        steady_requests=sum(outcome.steady_requests for outcome in outcomes),
        timeline=tuple(sorted(timeline)),
        notes=notes,
    )


class _Fleet:
    """The worker processes of one scenario and the parent's ends of their pipes."""

    def __init__(self, context: Any, gauge: FleetGauge) -> None:
        self._context = context
        self._gauge = gauge
        self._processes: list[BaseProcess] = []
        self._pipes: list[Connection] = []

    def start(self, plan: WorkerPlan) -> None:
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(
            target=run_worker,
            args=(plan, child_end, self._gauge),
            name=f"steadycache-demo-worker-{plan.index}",
            daemon=True,
        )
        process.start()
        child_end.close()  # the child holds its own copy; ours would hide its exit
        self._processes.append(process)
        self._pipes.append(parent_end)

    def broadcast(self, message: tuple[Any, ...]) -> None:
        for pipe in self._pipes:
            pipe.send(message)

    def collect(self, expected: str) -> list[tuple[Any, ...]]:
        """Each worker's next message (in worker order), which must be ``expected``."""
        replies: dict[int, tuple[Any, ...]] = {}
        waiting = dict(enumerate(self._pipes))
        while waiting:
            ready = wait(list(waiting.values()), timeout=_PHASE_TIMEOUT)
            if not ready:
                raise WorkerFailedError(
                    f"{len(waiting)} worker(s) sent no {expected!r} within {_PHASE_TIMEOUT:g} s"
                )
            for index, pipe in list(waiting.items()):
                if pipe not in ready:
                    continue
                try:
                    message = pipe.recv()
                except EOFError:
                    raise WorkerFailedError(
                        f"worker {index} exited before {expected!r} "
                        f"(exit code {self._processes[index].exitcode})"
                    ) from None
                if message[0] == "failed":
                    raise WorkerFailedError(message[1])
                if message[0] != expected:
                    raise WorkerFailedError(f"worker {index}: expected {expected!r}: {message!r}")
                replies[index] = message[1:]
                del waiting[index]
        return [replies[index] for index in range(len(self._pipes))]

    def stop(self) -> None:
        """Join the workers; terminate (by process object) only those that do not exit."""
        # Closing our ends first wakes a worker still waiting for a phase (after another
        # worker failed): its recv() ends and it exits instead of waiting to be killed.
        for pipe in self._pipes:
            pipe.close()
        for process in self._processes:
            process.join(timeout=10.0)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5.0)
