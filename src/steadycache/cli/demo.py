"""``steadycache demo``: the booking incident, reproduced and prevented, in under a minute."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from steadycache.cli._checks import module_available, one_line, redact_url, writable_output
from steadycache.cli.app import app
from steadycache.demo import QUICK, SCENARIO_NAMES, DemoConfig, run_demo
from steadycache.demo.redis_tier import RedisSetupError
from steadycache.demo.report import print_json, render


@app.command("demo")
def demo(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of the table.")
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", metavar="FILE", help="Write a PNG timeline per scenario."),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="URL",
            help="Run against PostgreSQL (postgresql://user@host/db) instead of a temporary "
            "SQLite file; the demo creates, then drops, a schema of its own "
            "(steadycache_demo_<random>).",
        ),
    ] = None,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="About 20 s instead of 30: the same spike, fewer cold-deploy keys, a faster "
            "clock.",
        ),
    ] = False,
    markdown: Annotated[
        Path | None,
        typer.Option(
            "--markdown", metavar="FILE", help="Also write the table as markdown (README)."
        ),
    ] = None,
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            "--scenario",
            metavar="NAME",
            help=f"Run only this scenario (repeatable): {', '.join(SCENARIO_NAMES)}.",
        ),
    ] = None,
    redis: Annotated[
        str | None,
        typer.Option(
            "--redis",
            metavar="URL",
            help="Share an L2 on this Redis (redis://host:6379/0) between worker processes, "
            "with leases; the demo writes under its own key prefix and deletes those keys.",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            metavar="N",
            min=1,
            help="Worker processes per scenario, each with its own pool of 10, splitting "
            "the spike (N > 1 needs --redis).",
        ),
    ] = 1,
) -> None:
    """Reproduce the booking incident (hot keys expiring together under a spike) against a
    real database and pool, next to each fix and steadycache's defaults."""
    if workers > 1 and redis is None:
        raise typer.BadParameter(
            "several workers share their cache through Redis: add --redis redis://HOST:PORT/DB",
            param_hint="--workers",
        )
    unknown = sorted(set(scenario or ()) - set(SCENARIO_NAMES))
    if unknown:
        raise typer.BadParameter(
            f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIO_NAMES)}",
            param_hint="--scenario",
        )
    # Output files are checked now, not after the run they would be written at the end of.
    writable_output(plot, "--plot")
    writable_output(markdown, "--markdown")
    if plot is not None:
        module_available("matplotlib", "--plot", "--plot")
    # The demo counts every failed load itself; the library's per-failure warnings
    # (hundreds in the incident scenario) would bury the table.
    logging.getLogger("steadycache").addHandler(logging.NullHandler())
    # Piped output gets a table wide enough for every column instead of rich's 80.
    console = Console(stderr=json_output, width=None if sys.stdout.isatty() else 120)
    config = QUICK if quick else DemoConfig()
    try:
        with console.status("seeding the booking database") as status:
            report = run_demo(
                config,
                db_url=db,
                scenarios=scenario,
                progress=lambda name: status.update(f"running scenario {name}"),
                redis_url=redis,
                workers=workers,
            )
    except RedisSetupError as exc:  # unreachable, or not a Redis URL
        message = str(exc) if redis is None else str(exc).replace(redis, redact_url(redis))
        raise typer.BadParameter(message, param_hint="--redis") from exc
    except DBAPIError as exc:  # the server is down, refuses the role, the password...
        where = "the database" if db is None else f"PostgreSQL at {redact_url(db)}"
        raise typer.BadParameter(
            f"cannot use {where}: {one_line(str(exc.orig or exc))}", param_hint="--db"
        ) from exc
    except (ValueError, ImportError, SQLAlchemyError) as exc:  # a bad URL, a missing driver
        raise typer.BadParameter(_db_problem(db, exc), param_hint="--db") from exc
    if json_output:
        print_json(report)
    else:
        render(report, console)
    if markdown is not None:
        from steadycache.demo.report import as_markdown

        try:
            markdown.write_text(as_markdown(report, "steadycache demo --markdown FILE"))
        except OSError as exc:
            raise typer.BadParameter(
                f"cannot write {markdown}: {exc.strerror or exc}", param_hint="--markdown"
            ) from exc
    if plot is not None:
        from steadycache.demo.plot import write_plot  # matplotlib only when asked for

        try:
            write_plot(report, plot)
        except OSError as exc:
            raise typer.BadParameter(
                f"cannot write {plot}: {exc.strerror or exc}", param_hint="--plot"
            ) from exc
        console.print(f"timeline written to {plot}")


def _db_problem(db: str | None, exc: Exception) -> str:
    """One line on why ``--db`` cannot be used, its password never shown."""
    if db is None:
        return one_line(str(exc))
    shown = redact_url(db)
    if isinstance(exc, ImportError):
        return (
            f"{shown}: its driver {exc.name or ''} is not installed (postgresql:// URLs use "
            "psycopg 3: pip install 'steadycache[postgres]')"
        )
    message = one_line(str(exc)).replace(db, shown)
    return message if shown in message else f"cannot use {shown}: {message}"
