"""The consistency scenario's outputs: rich tables for people, one JSON object for machines."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from steadycache.demo.consistency_results import (
    MODE_TITLES,
    AuditFinding,
    ConsistencyReport,
    ModeResult,
)
from steadycache.demo.consistency_workload import PATH_BY_NUMBER, PATHS

TOP_OFFENDERS = 5


def path_label(number: int | None) -> str:
    """``3 pricing-batch``; ``?`` when the harness saw no write (it always should)."""
    return "?" if number is None else f"{number} {PATH_BY_NUMBER[number].name}"


def top_offenders(result: ModeResult, limit: int = TOP_OFFENDERS) -> list[dict[str, Any]]:
    """The auditor's offending keys, most often found stale first, each with the path that
    last wrote it before its latest stale audit."""
    latest: dict[int, AuditFinding] = {}
    counts: Counter[int] = Counter()
    for finding in result.findings:
        latest[finding.hotel_id] = finding
        counts[finding.hotel_id] += 1
    ranked = sorted(result.offender_keys, key=lambda key: (-counts[key], key))
    rows = []
    for key in ranked[:limit]:
        last = latest.get(key)
        rows.append(
            {
                "hotel_id": key,
                "times_found_stale": counts[key],
                "last_written_by": None if last is None else last.path,
                "seconds_since_write": None if last is None else _number(last.since_write),
                "entry_age_seconds": None if last is None else _number(last.entry_age),
            }
        )
    return rows


def as_document(report: ConsistencyReport) -> dict[str, Any]:
    """The JSON-ready form of ``report`` (the schema of ``steadycache consistency --json``)."""
    config = report.config
    workload = config.workload
    return {
        "seed": report.seed,
        "hotels": workload.hotels,
        "simulated_seconds": workload.duration,
        "ttl_seconds": config.ttl,
        "poll_interval_seconds": config.poll_interval,
        "audit_sample_rate": config.sample_rate,
        "audit_grace_seconds": config.grace,
        "event_transport": report.transport,
        "write_paths": [
            {
                "path": path.number,
                "name": path.name,
                "publishes_event": path.publishes,
                "writes": report.writes_by_path.get(path.number, 0),
                "rows_changed": report.rows_by_path.get(path.number, 0),
            }
            for path in PATHS
        ],
        "modes": [_mode_document(result) for result in report.modes],
        "seconds": round(report.seconds, 3),
    }


def _mode_document(result: ModeResult) -> dict[str, Any]:
    return {
        "mode": result.mode,
        "reads": result.reads,
        "db_loads": result.db_loads,
        "stale_reads": result.stale_reads,
        "stale_read_rate": result.stale_read_rate,
        "max_stale_age_seconds": result.max_stale_age,
        "stale_reads_by_path": {str(k): v for k, v in result.stale_reads_by_path.items()},
        "invalidations": result.invalidations,
        "audit": {
            "sampled": result.audit_sampled,
            "audited": result.audited,
            "stale": result.audit_stale,
            "stale_rate": result.audit_stale_rate,
            "inconclusive": result.audit_inconclusive,
            "offenders": len(result.offender_keys),
            "offenders_dropped": result.offenders_dropped,
            "stale_findings_by_path": {
                str(k): v for k, v in sorted(_findings_by_path(result).items(), key=_path_order)
            },
            "max_seconds_from_write_to_stale_finding": _number(
                max((f.since_write for f in result.findings), default=0.0)
            ),
        },
        "top_offenders": top_offenders(result),
    }


def as_json(report: ConsistencyReport) -> str:
    """One line of JSON."""
    return json.dumps(as_document(report))


def _findings_by_path(result: ModeResult) -> Counter[int | None]:
    return Counter(finding.path for finding in result.findings)


def _path_order(item: tuple[int | None, int]) -> int:
    return -1 if item[0] is None else item[0]


def _number(value: float) -> float | None:
    """JSON has no NaN: an unknown age is null."""
    return None if math.isnan(value) else round(value, 3)


def _by_path(counts: dict[int, int]) -> str:
    return " ".join(f"{path}:{count}" for path, count in counts.items()) or "-"


def _age(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.0f} s"


def render(report: ConsistencyReport, console: Console) -> None:
    """The write paths, one row per mode, then each mode's top offenders."""
    config = report.config
    workload = config.workload
    paths = Table(title="Five write paths change the catalogue", title_justify="left")
    for header, justify in (
        ("path", "left"),
        ("what it does", "left"),
        ("publishes\nhotel.updated", "center"),
        ("writes", "right"),
        ("rows\nchanged", "right"),
    ):
        paths.add_column(header, justify=justify)  # type: ignore[arg-type]
    for path in PATHS:
        paths.add_row(
            path_label(path.number),
            path.does,
            Text("yes", style="green") if path.publishes else Text("no", style="bold red"),
            str(report.writes_by_path.get(path.number, 0)),
            str(report.rows_by_path.get(path.number, 0)),
        )
    console.print(paths)

    modes = Table(
        title=f"{workload.hotels} hotels, {report.modes[0].reads if report.modes else 0} reads "
        f"over {workload.duration / 60:g} simulated minutes, TTL {config.ttl / 60:g} min "
        f"(seed {report.seed})",
        title_justify="left",
    )
    for header in (
        "mode",
        "reads",
        "DB\nloads",
        "stale\nreads",
        "stale\nrate",
        "max stale\nage",
        "stale reads\nby path",
        "invali-\ndations",
        "audited",
        "audit\nstale",
        "audit\nstale rate",
    ):
        left = header in ("mode", "stale reads\nby path")
        modes.add_column(header, justify="left" if left else "right")
    for result in report.modes:
        bad = result.stale_read_rate >= 0.01
        modes.add_row(
            Text(result.mode, style="bold red" if bad else "green"),
            str(result.reads),
            str(result.db_loads),
            Text(str(result.stale_reads), style="bold red" if bad else ""),
            f"{result.stale_read_rate:.2%}",
            _age(result.max_stale_age),
            _by_path(result.stale_reads_by_path),
            str(result.invalidations),
            str(result.audited),
            str(result.audit_stale),
            f"{result.audit_stale_rate:.2%}",
        )
    console.print(modes)
    for result in report.modes:
        console.print(f"  [bold]{result.mode}[/bold]: {MODE_TITLES[result.mode]}")
    for result in report.modes:
        _render_offenders(result, config.poll_interval, console)
    console.print(
        f"\nA read is stale when the served value differs from the row the database holds "
        f"at that instant (checked on every read). The auditor samples "
        f"{config.sample_rate:.0%} of served reads and compares each entry with a reload "
        f"(grace {config.grace:g} s). Outbox polled every {_age(config.poll_interval)}; "
        f"events {report.transport}. Simulated time, one thread: the same seed gives the "
        f"same numbers. The run took {report.seconds:.1f} s.",
        highlight=False,
    )


def _render_offenders(result: ModeResult, poll_interval: float, console: Console) -> None:
    rows = top_offenders(result)
    if not rows:
        console.print(f"\n[green]{result.mode}: the auditor found no stale entry.[/green]")
        return
    by_path = sorted(_findings_by_path(result).items(), key=_path_order)
    listed = f"{len(result.offender_keys)} keys on the auditor's list"
    if result.offenders_dropped:
        listed += f" ({result.offenders_dropped} older dropped)"
    caption = f"{listed}; stale findings by last writer: " + ", ".join(
        f"{path_label(path)} {count}" for path, count in by_path
    )
    if result.mode == "database" and all(f.since_write <= poll_interval for f in result.findings):
        caption += (
            f"; each written under one poll interval ({_age(poll_interval)}) before its "
            "audit: a change still in the outbox, not a missed one"
        )
    table = Table(
        title=f"{result.mode}: the auditor's top offenders",
        title_justify="left",
    )
    for header in ("hotel", "found\nstale", "last written by", "write before\naudit"):
        table.add_column(header, justify="left" if header.startswith("last") else "right")
    for row in rows:
        since = row["seconds_since_write"]
        table.add_row(
            str(row["hotel_id"]),
            str(row["times_found_stale"]),
            path_label(row["last_written_by"]),
            "?" if since is None else _age(since),
        )
    console.print()
    console.print(table)
    console.print(f"  {caption}", highlight=False)
