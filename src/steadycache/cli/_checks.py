"""Checks every command runs on its options before any slow work, and error wording.

A mistake in an option must cost the user a second, not the 25 s demo or a 13 s trace read
it would otherwise fail after: output files, needed modules and numeric ranges are all
checked up front, each failure a ``typer.BadParameter`` naming the option.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
from pathlib import Path

import typer

from steadycache.cli._environment import INSTALL_CLI_EXTRA

_USERINFO = re.compile(r"^(?P<scheme>[^:/?#]+://)(?P<user>[^:@/?#]*):[^@/?#]*@")


def writable_output(path: Path | None, option: str) -> None:
    """Refuse an output file that could not be written: missing folder, no permission."""
    if path is None:
        return
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise typer.BadParameter(f"{path} is a directory; give a file name", param_hint=option)
    if not parent.is_dir():
        raise typer.BadParameter(
            f"cannot write {path}: the directory {parent} does not exist", param_hint=option
        )
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise typer.BadParameter(
            f"cannot write {path}: permission denied in {parent}", param_hint=option
        )


def module_available(module: str, option: str, needed_for: str) -> None:
    """Refuse an option whose optional dependency is missing, naming what to install."""
    if importlib.util.find_spec(module) is None:
        raise typer.BadParameter(
            f"{needed_for} needs {module}, which is not installed: {INSTALL_CLI_EXTRA}",
            param_hint=option,
        )


def fraction(value: float, option: str, *, zero_allowed: bool = False) -> None:
    """Refuse anything but a number in (0, 1] (or [0, 1])."""
    low_ok = value >= 0.0 if zero_allowed else value > 0.0
    if not (low_ok and value <= 1.0):
        interval = "[0, 1]" if zero_allowed else "(0, 1]"
        raise typer.BadParameter(f"must be in {interval}, got {value:g}", param_hint=option)


def non_negative(value: float, option: str) -> None:
    """Refuse negative, infinite and NaN values."""
    if not (math.isfinite(value) and value >= 0.0):
        raise typer.BadParameter(
            f"must be a finite number, 0 or more, got {value:g}", param_hint=option
        )


def redact_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***`` (for messages and logs)."""
    return _USERINFO.sub(r"\g<scheme>\g<user>:***@", url, count=1)


def one_line(text: str) -> str:
    """A multi-line driver message as one line (``; `` between its lines)."""
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())
