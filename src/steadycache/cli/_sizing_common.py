"""What ``simulate`` and ``size`` share: reading a trace with CLI errors and progress, and
citations.

Reading a long trace takes seconds to minutes; on a terminal a progress bar on stderr shows
how far it is (bytes of the file read, and time left), then a spinner names each slow step.
Piped or redirected, nothing is drawn: stdout stays the report (or the JSON).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from steadycache.sizing.readers import FORMATS
from steadycache.sizing.trace_file import FORMAT_NAME, LoadedTrace, open_trace

if TYPE_CHECKING:
    from rich.console import Console

    from steadycache.sizing.readers import Trace
    from steadycache.sizing.trace_stream import Progress

TRACE_HINT = "TRACE"
_ARC_CITATION = (
    'Trace from N. Megiddo and D. S. Modha, "ARC: A Self-Tuning, Low Overhead Replacement '
    'Cache", USENIX FAST 2003.'
)
_CLOUDPHYSICS_NOTE = (
    "CloudPhysics block I/O sample, as shipped with libCacheSim (1a1a11a/libCacheSim)."
)
#: Errors a reader raises for a file it cannot use (TraceFormatError is a ValueError).
_READ_ERRORS = (ValueError, ImportError, OSError)


def check_trace_options(path: Path, trace_format: str | None) -> None:
    """Refuse a missing file, a directory or an unknown ``--format`` before reading."""
    if trace_format is not None and trace_format not in (*FORMATS, FORMAT_NAME):
        raise typer.BadParameter(
            f"unknown trace format {trace_format!r}; valid formats: "
            f"{', '.join((*FORMATS, FORMAT_NAME))}",
            param_hint="--format",
        )
    if not path.exists():
        raise typer.BadParameter(f"trace file {str(path)!r} does not exist", param_hint=TRACE_HINT)
    if path.is_dir():
        raise typer.BadParameter(f"{path} is a directory, not a trace file", param_hint=TRACE_HINT)


def load_for_cli(
    path: Path,
    trace_format: str | None,
    limit: int | None,
    *,
    sample_rate: float | None = None,
    progress: Progress | None = None,
) -> LoadedTrace:
    """``open_trace`` with its errors turned into a CLI message instead of a traceback."""
    check_trace_options(path, trace_format)
    try:
        loaded = open_trace(
            path, fmt=trace_format, limit=limit, sample_rate=sample_rate, progress=progress
        )
    except _READ_ERRORS as exc:
        raise typer.BadParameter(_reason(path, exc), param_hint=TRACE_HINT) from exc
    if len(loaded.trace) == 0:
        if loaded.observed_requests:
            raise typer.BadParameter(
                f"the {loaded.sample_rate:g} sample of {path} kept none of its "
                f"{loaded.observed_requests:,} requests; raise --sample-rate",
                param_hint="--sample-rate",
            )
        raise typer.BadParameter(f"{path} holds no requests", param_hint=TRACE_HINT)
    return loaded


def stream_for_cli(
    path: Path, trace_format: str | None, limit: int | None, progress: Progress | None
) -> Iterator[Trace]:
    """The trace's chunks (see ``readers.iter_trace``), with reader errors as CLI messages."""
    from steadycache.sizing.readers import iter_trace

    check_trace_options(path, trace_format)
    empty = True
    try:
        for chunk in iter_trace(path, fmt=trace_format, limit=limit, progress=progress):
            empty = empty and len(chunk) == 0
            yield chunk
    except _READ_ERRORS as exc:
        raise typer.BadParameter(_reason(path, exc), param_hint=TRACE_HINT) from exc
    if empty:
        raise typer.BadParameter(f"{path} holds no requests", param_hint=TRACE_HINT)


def _reason(path: Path, exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return f"cannot read {path}: {exc.strerror or exc}"
    return str(exc)


def stderr_console() -> Console:
    """Where progress goes: stderr, so stdout stays the report."""
    from rich.console import Console

    return Console(stderr=True)


@contextmanager
def reading(path: Path, description: str, console: Console) -> Iterator[Progress | None]:
    """A progress bar over the file's bytes while the body reads it (None when not a TTY)."""
    if not console.is_terminal:
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=path.stat().st_size)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@contextmanager
def step(description: str, console: Console) -> Iterator[None]:
    """A spinner naming a slow step, on a terminal only."""
    if not console.is_terminal:
        yield
        return
    with console.status(description):
        yield


def data_note(trace_name: str) -> str | None:
    """The attribution a shared trace must carry wherever its results are shown."""
    stem = trace_name.split(".")[0].upper()
    if stem in {
        "P1",
        "P2",
        "P3",
        "P4",
        "P5",
        "P6",
        "P7",
        "P8",
        "P9",
        "P10",
        "P11",
        "P12",
        "P13",
        "P14",
        "S1",
        "S2",
        "S3",
        "DS1",
        "OLTP",
        "SPC1LIKE",
        "CONCAT",
        "MERGEP",
        "MERGES",
    }:
        return _ARC_CITATION
    if trace_name.lower().startswith("cloudphysics"):
        return _CLOUDPHYSICS_NOTE
    return None
