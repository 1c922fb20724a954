"""Imports every sub-command module so each registers itself on the Typer app."""

from __future__ import annotations

from steadycache.cli import (
    consistency,  # noqa: F401
    demo,  # noqa: F401
    simulate,  # noqa: F401
    size,  # noqa: F401
)
