"""The ``steadycache`` command line: one sub-command per module in this package.

The command line needs the ``cli`` extra. ``main`` (the console script) must still run
without it, to say so: this module imports Typer only inside a guard, and ``main`` turns a
missing dependency of the extra into one line naming what to install, exit status 2.
"""

from __future__ import annotations

import sys

from steadycache.cli._environment import CLI_EXTRA_MODULES, INSTALL_CLI_EXTRA, mark_started

try:
    from steadycache.cli.app import app
except ImportError as exc:  # without the extra; main() reports it, importers get the error
    if (exc.name or "").split(".")[0] not in CLI_EXTRA_MODULES:
        raise

__all__ = ["app", "main"]


def _register_commands() -> None:
    # Sub-command modules register themselves on `app` when imported; importing them here,
    # not at package import, keeps `import steadycache` free of the CLI's extras.
    from steadycache.cli import commands  # noqa: F401


def main() -> None:
    """Entry point of the ``steadycache`` console script."""
    mark_started()
    try:
        from steadycache.cli.app import app as typer_app

        _register_commands()
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing not in CLI_EXTRA_MODULES:
            raise
        print(
            f"steadycache: the command line needs {missing!r}, which is not installed; "
            f"install the cli extra: {INSTALL_CLI_EXTRA}",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    typer_app()
