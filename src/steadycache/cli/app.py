"""The Typer application every sub-command module registers itself on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="steadycache",
    help="steadycache: the ten caching decisions, explicit, measured and audited.",
    no_args_is_help=True,
    add_completion=False,
)
