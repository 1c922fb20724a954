"""``steadycache consistency``: stale reads with no invalidation, with events, with the database."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer
from rich.console import Console

from steadycache.cli.app import app
from steadycache.demo.consistency import QUICK, ConsistencyConfig, run_consistency
from steadycache.demo.consistency_report import as_json, render
from steadycache.demo.redis_tier import RedisSetupError


@app.command("consistency")
def consistency(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of the tables.")
    ] = False,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the workload, the TTL jitter and the audit.")
    ] = 7,
    quick: Annotated[
        bool, typer.Option("--quick", help="Fewer hotels and 10 simulated minutes.")
    ] = False,
    redis: Annotated[
        str | None,
        typer.Option(
            "--redis",
            metavar="URL",
            help="Send the events mode's events over the Redis Streams bus on this server "
            "(redis://host:6379/0) instead of routing them in-process; the demo uses a "
            "stream of its own and deletes it.",
        ),
    ] = None,
) -> None:
    """Stale reads from five write paths, with TTL only, events or database triggers, and
    what the staleness auditor finds."""
    # The auditor logs each stale entry it finds (hundreds in ttl-only): the tables count them.
    logging.getLogger("steadycache").addHandler(logging.NullHandler())
    console = Console(stderr=json_output, width=None if sys.stdout.isatty() else 120)
    config = QUICK if quick else ConsistencyConfig()
    try:
        with console.status("replaying the workload in three modes"):
            report = run_consistency(config, seed=seed, redis_url=redis)
    except RedisSetupError as exc:
        raise typer.BadParameter(str(exc), param_hint="--redis") from exc
    if json_output:
        print(as_json(report))
    else:
        render(report, console)
