"""What every command shares about its process: the extra it needs, and when it started.

A leaf module (it imports nothing of the command line), so the package's ``main`` and the
command modules can all use it without an import cycle.
"""

from __future__ import annotations

import os
import time

#: Top-level modules the ``cli`` extra installs (and Typer's own dependency, click).
CLI_EXTRA_MODULES = frozenset(
    {"typer", "click", "rich", "sqlalchemy", "numpy", "zstandard", "matplotlib"}
)
INSTALL_CLI_EXTRA = 'pip install "steadycache[cli]"'


class _ProcessClock:
    """When ``main`` started: the wall time a command reports covers its imports too."""

    started: float | None = None


_clock = _ProcessClock()
#: Seconds: a console script reaches main() well within this of its process starting.
_FRESH_PROCESS = 30.0


def mark_started() -> None:
    """Called first thing by the console script: the command started with its process.

    The interpreter and ``import steadycache`` take a second before ``main`` runs; the
    time a command reports includes them when the kernel says when the process started.
    """
    now = time.perf_counter()
    age = _process_age()
    # A process much older than an interpreter's start-up is not a fresh command (main()
    # called from a long-running program): its command starts now.
    _clock.started = now - age if age is not None and 0.0 <= age < _FRESH_PROCESS else now


def _process_age() -> float | None:
    """Seconds since this process started, from /proc (Linux); None where unknown."""
    try:
        with open("/proc/self/stat", "rb") as handle:
            stat = handle.read()
        # Fields after the command name, which ends at the last ")": starttime is the
        # 22nd field of the line, the 20th after the name (clock ticks since boot).
        start_ticks = int(stat[stat.rindex(b")") + 2 :].split()[19])
        return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def started_at() -> float:
    """``perf_counter()`` when this command started (now, when run without ``main``)."""
    return time.perf_counter() if _clock.started is None else _clock.started
