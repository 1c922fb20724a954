"""The demo's outputs: a rich table for people, one JSON object for machines."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table
from rich.text import Text

from steadycache.demo.database import POOL_SIZE, POOL_TIMEOUT, QUERY_HOLD
from steadycache.demo.metrics import ScenarioResult


@dataclass(frozen=True)
class FleetInfo:
    """A fleet run: how many worker processes, and the Redis they shared."""

    workers: int
    #: ``host:port/db``, credentials removed.
    redis: str
    maxmemory: int | None
    maxmemory_policy: str | None
    #: What the server runs with and what the demo decided about it (``redis_tier``).
    note: str
    #: FLUSHDB/FLUSHALL the server ran during the run (another client's): None if unknown.
    flushes_during_run: int | None = 0


@dataclass(frozen=True)
class DemoReport:
    """All scenarios of one run, with what they ran against."""

    results: tuple[ScenarioResult, ...]
    database: str
    db_query_ms: float
    speed: float
    seconds: float
    #: None for the single-process run (no Redis).
    fleet: FleetInfo | None = None

    def as_json(self) -> str:
        """``{"scenarios": [...]}``, the schema of ``steadycache demo --json``.

        A fleet run adds ``"workers"`` and ``"redis"`` before ``"scenarios"``; the rows
        keep the same keys, their counts then being fleet-wide totals.
        """
        document: dict[str, object] = {}
        if self.fleet is not None:
            document["workers"] = self.fleet.workers
            document["redis"] = {
                "server": self.fleet.redis,
                "maxmemory": self.fleet.maxmemory,
                "maxmemory_policy": self.fleet.maxmemory_policy,
                "flushes_during_run": self.fleet.flushes_during_run,
            }
        document["scenarios"] = [result.as_json() for result in self.results]
        return json.dumps(document)


def _setting(report: DemoReport) -> str:
    """What the spike hit, for titles: the database, the pool(s), the shared tier."""
    hold = f"each query holding its connection {QUERY_HOLD * 1000:.0f} ms"
    if report.fleet is None:
        return f"{report.database}, pool {POOL_SIZE}, {POOL_TIMEOUT:g} s pool timeout, {hold}"
    return (
        f"{report.database}, {report.fleet.workers} worker processes with a pool of "
        f"{POOL_SIZE} each, {POOL_TIMEOUT:g} s pool timeout, {hold}, shared L2 on Redis "
        f"{report.fleet.redis}"
    )


def _failed(result: ScenarioResult) -> bool:
    return result.pool_timeouts > 0 or result.errors > 0


def _cell(value: str, *, bad: bool = False, good: bool = False) -> Text:
    return Text(value, style="bold red" if bad else "green" if good else "")


def render(report: DemoReport, console: Console) -> None:
    """Print the table and the footnotes that say how to read it."""
    table = Table(
        title=f"Hot keys expiring under a 500-request spike ({_setting(report)})",
        title_justify="left",
    )
    for header, justify in (
        ("scenario", "left"),
        ("hot\nkeys", "right"),
        ("DB\nqueries", "right"),
        ("per key\n/expiry", "right"),
        ("peak DB\nconc.", "right"),
        ("pool\ntimeouts", "right"),
        ("errors", "right"),
        ("waited\nfor DB", "right"),
        ("stale", "right"),
        ("p50\nms", "right"),
        ("p99\nms", "right"),
        ("max\nms", "right"),
    ):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    query_ms = report.db_query_ms
    for result in report.results:
        failed = _failed(result)
        table.add_row(
            _cell(result.name, bad=failed, good=not failed),
            str(result.hot_keys),
            _cell(str(result.db_queries), bad=result.db_queries_per_hot_key_expiry > 2),
            _cell(
                f"{result.db_queries_per_hot_key_expiry:.2f}",
                bad=result.db_queries_per_hot_key_expiry > 2,
            ),
            str(result.peak_db_concurrency),
            _cell(str(result.pool_timeouts), bad=result.pool_timeouts > 0),
            _cell(str(result.errors), bad=result.errors > 0),
            str(result.waited_for_load),
            str(result.stale_served),
            f"{result.p50_ms:.1f}",
            _cell(
                f"{result.p99_ms:.1f}",
                bad=result.p99_ms > 1.2 * query_ms,
                good=result.p99_ms <= 1.2 * query_ms,
            ),
            f"{result.max_ms:.1f}",
        )
    console.print(table)
    for result in report.results:
        line = f"  [bold]{result.name}[/bold]: {result.title}"
        if result.notes:
            line += f" ({result.notes})"
        console.print(line)
    steady = max((result.steady_requests for result in report.results), default=0)
    console.print(
        f"\nOne availability query alone: [bold]{query_ms:.1f} ms[/bold] (median, this run; "
        f"the database holds each connection at least {QUERY_HOLD * 1000:.0f} ms, as one "
        f"under load does, so {POOL_SIZE} connections serve {POOL_SIZE / QUERY_HOLD:.0f} "
        f"queries a second on any machine). "
        f"Latencies are the spike's requests; DB queries, timeouts and errors count the "
        f"whole scenario after start-up (steady traffic of ~{steady} requests included); "
        f"'waited for DB' counts requests that waited for a load instead of a cached "
        f"value. Simulated time ran {report.speed:g}x faster than real time (60 s TTL = "
        f"{60 / report.speed:.1f} s); the run took {report.seconds:.1f} s.",
        highlight=False,
    )
    if report.fleet is not None:
        console.print(
            f"\nFleet run: DB queries, pool timeouts and errors are summed over the "
            f"{report.fleet.workers} workers, peak DB concurrency is counted across "
            f"processes, latencies are pooled; spike and steady traffic are split between "
            f"the workers. Redis {report.fleet.redis}: {report.fleet.note}",
            highlight=False,
        )
        if report.fleet.flushes_during_run:
            console.print(
                f"[bold red]Another client flushed this Redis database "
                f"{report.fleet.flushes_during_run} time(s) during the run[/bold red]: cached "
                "entries vanished mid-scenario, so these numbers overstate the misses. Rerun "
                "on a database nobody else flushes.",
                highlight=False,
            )


def as_markdown(report: DemoReport, command: str) -> str:
    """The table as markdown, with how it was produced (pasted into the README)."""
    lines = [
        f"Hot keys expiring under a {report.results[0].requests if report.results else 0}-request "
        f"spike ({_setting(report)}). One availability query alone: "
        f"{report.db_query_ms:.1f} ms (median, this run).",
        "",
        "| scenario | hot keys | DB queries | per key per expiry | peak DB concurrency "
        "| pool timeouts | errors | waited for DB | stale served | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report.results:
        lines.append(
            f"| `{r.name}` | {r.hot_keys} | {r.db_queries} | "
            f"{r.db_queries_per_hot_key_expiry:.2f} | {r.peak_db_concurrency} | "
            f"{r.pool_timeouts} | {r.errors} | {r.waited_for_load} | {r.stale_served} | "
            f"{r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.max_ms:.1f} |"
        )
    lines += [""] + [f"- `{r.name}`: {r.title}" for r in report.results]
    lines += [
        "",
        f"Produced by `{command}` ({report.seconds:.0f} s; simulated time ran "
        f"{report.speed:g}x faster than real time). Latencies are the spike's requests; "
        "DB queries, timeouts and errors count the whole scenario after start-up.",
    ]
    if report.fleet is not None:
        lines += [
            "",
            f"Fleet-wide totals over {report.fleet.workers} worker processes. "
            f"Redis {report.fleet.redis}: {report.fleet.note}",
        ]
    return "\n".join(lines) + "\n"


def print_json(report: DemoReport) -> None:
    """The JSON object alone on stdout, one line, no colour (for ``jq`` and scripts)."""
    print(report.as_json())


def results_named(results: Sequence[ScenarioResult], name: str) -> ScenarioResult:
    """The result of scenario ``name`` (for tests and callers)."""
    for result in results:
        if result.name == name:
            return result
    raise KeyError(name)
