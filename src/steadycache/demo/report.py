"""The demo's outputs: a rich table for people, one JSON object for machines."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table
from rich.text import Text

from steadycache.demo.database import (
    POOL_SIZE,
    POOL_TIMEOUT,
    SATURATED_HOLD,
    SATURATED_QUERIES_PER_SECOND,
    SATURATION,
)
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
    hold = (
        f"each query holding its connection {SATURATED_HOLD * 1000:.0f} ms once "
        f"{SATURATION} run at once"
    )
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


def _spike(report: DemoReport) -> int:
    return max((result.requests for result in report.results), default=0)


#: (header, cell) of the full table, and of the one that fits 80 columns.
_WIDE_COLUMNS = (
    ("scenario", "name"),
    ("hot\nkeys", "hot_keys"),
    ("DB\nqueries", "queries"),
    ("per key\n/expiry", "per_key"),
    ("peak DB\nconc.", "peak"),
    ("pool\ntimeouts", "timeouts"),
    ("errors", "errors"),
    ("waited\nfor DB", "waited"),
    ("stale", "stale"),
    ("p50\nms", "p50"),
    ("p99\nms", "p99"),
    ("max\nms", "max"),
)
_NARROW_COLUMNS = (
    ("scenario", "name"),
    ("DB\nqueries", "queries"),
    ("per key\n/expiry", "per_key"),
    ("pool\ntimeouts", "timeouts"),
    ("errors", "errors"),
    ("waited\nfor DB", "waited"),
    ("p99\nms", "p99"),
)


def _cells(result: ScenarioResult, query_ms: float) -> dict[str, Text | str]:
    failed = _failed(result)
    crowded = result.db_queries_per_hot_key_expiry > 2
    return {
        "name": _cell(result.name, bad=failed, good=not failed),
        "hot_keys": str(result.hot_keys),
        "queries": _cell(str(result.db_queries), bad=crowded),
        "per_key": _cell(f"{result.db_queries_per_hot_key_expiry:.2f}", bad=crowded),
        "peak": str(result.peak_db_concurrency),
        "timeouts": _cell(str(result.pool_timeouts), bad=result.pool_timeouts > 0),
        "errors": _cell(str(result.errors), bad=result.errors > 0),
        "waited": str(result.waited_for_load),
        "stale": str(result.stale_served),
        "p50": f"{result.p50_ms:.1f}",
        "p99": _cell(
            f"{result.p99_ms:.1f}",
            bad=result.p99_ms > 1.2 * query_ms,
            good=result.p99_ms <= 1.2 * query_ms,
        ),
        "max": f"{result.max_ms:.1f}",
    }


def verdict(report: DemoReport) -> list[str]:
    """What the run showed, in plain sentences: the incident, the defaults, the fix.

    Says so when the incident did not reproduce (no request failed), and why that can be.
    """
    names = {result.name: result for result in report.results}
    lines: list[str] = []
    incident = names.get("incident")
    if incident is not None:
        if incident.errors > 0:
            lines.append(
                f"Under the incident's configuration, {incident.errors} of the "
                f"{incident.requests} spike requests failed: {incident.db_queries} queries "
                f"filled all {incident.peak_db_concurrency} connections and "
                f"{incident.pool_timeouts} requests timed out waiting for one. That is the "
                "outage."
            )
        else:
            lines.append(
                f"The incident did not reproduce this run: no request failed "
                f"({incident.db_queries} queries, {incident.waited_for_load} requests "
                "waited). The spike's misses did not outnumber what the pool serves "
                f"within its timeout ({SATURATED_QUERIES_PER_SECOND * POOL_TIMEOUT:.0f} queries), "
                "which happens when the spike's threads are released slowly (a machine "
                "far busier than two CPU burners) or the hot keys were reloaded first."
            )
    defaults = names.get("defaults")
    if defaults is not None:
        per_key = defaults.db_queries_per_hot_key_expiry
        lines.append(
            f"The same spike under steadycache's defaults: {per_key:.0f} "
            f"quer{'y' if round(per_key) == 1 else 'ies'} per hot key per expiry, "
            f"{defaults.errors} errors."
        )
        lines.append(
            "The fix is the default: Policy(pattern=ReadThrough(), invalidation=Ttl(60)) "
            "spreads each TTL by 10 %, lets one load per key run (single-flight) and "
            "refreshes a hot key before it expires (XFetch)."
        )
    return lines


#: Below this many columns the table keeps only the columns that tell the story.
_WIDE_TABLE = 120


def render(report: DemoReport, console: Console) -> None:
    """Print the table, the footnotes that say how to read it, and the verdict."""
    wide = console.width >= _WIDE_TABLE
    table = Table(
        title=f"Hot keys expiring under a {_spike(report)}-request spike ({_setting(report)})",
        title_justify="left",
    )
    columns = _WIDE_COLUMNS if wide else _NARROW_COLUMNS
    for header, _ in columns:
        table.add_column(header, justify="left" if header == "scenario" else "right")
    query_ms = report.db_query_ms
    for result in report.results:
        cells = _cells(result, query_ms)
        table.add_row(*(cells[key] for _, key in columns))
    console.print(table)
    for result in report.results:
        line = f"  [bold]{result.name}[/bold]: {result.title}"
        if result.notes:
            line += f" ({result.notes})"
        console.print(line)
    steady = max((result.steady_requests for result in report.results), default=0)
    console.print(
        f"\nOne availability query alone: [bold]{query_ms:.1f} ms[/bold] (median, this run; "
        f"once {SATURATION} queries run at once the database holds each connection "
        f"{SATURATED_HOLD * 1000:.0f} ms, as one under load does, so a full pool of "
        f"{POOL_SIZE} serves {SATURATED_QUERIES_PER_SECOND:.0f} queries a second on any "
        f"machine). "
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
    lines = verdict(report)
    if lines:
        console.print("\n[bold]Verdict.[/bold] " + " ".join(lines), highlight=False)


def as_markdown(report: DemoReport, command: str) -> str:
    """The table as markdown, with how it was produced (pasted into the README)."""
    lines = [
        f"Hot keys expiring under a {_spike(report)}-request spike ({_setting(report)}). "
        "One availability query alone: "
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
    found = verdict(report)
    if found:
        lines += ["", "**Verdict.** " + " ".join(found)]
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
