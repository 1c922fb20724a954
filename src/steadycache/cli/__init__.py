"""The ``steadycache`` command line: one sub-command per module in this package."""

from __future__ import annotations

from steadycache.cli.app import app

__all__ = ["app", "main"]


def _register_commands() -> None:
    # Sub-command modules register themselves on `app` when imported; importing them here,
    # not at package import, keeps `import steadycache` free of the CLI's extras.
    from steadycache.cli import commands  # noqa: F401


def main() -> None:
    """Entry point of the ``steadycache`` console script."""
    _register_commands()
    app()
