"""What ``simulate`` and ``size`` share: loading a trace with CLI errors, and citations."""

from __future__ import annotations

from pathlib import Path

import typer

from steadycache.sizing.trace_file import LoadedTrace, open_trace

_ARC_CITATION = (
    'Trace from N. Megiddo and D. S. Modha, "ARC: A Self-Tuning, Low Overhead Replacement '
    'Cache", USENIX FAST 2003.'
)
_CLOUDPHYSICS_NOTE = (
    "CloudPhysics block I/O sample, as shipped with libCacheSim (1a1a11a/libCacheSim)."
)


def load_for_cli(path: Path, trace_format: str | None, limit: int | None) -> LoadedTrace:
    """``open_trace`` with its errors turned into a CLI message instead of a traceback."""
    if not path.exists():
        raise typer.BadParameter(f"trace file {str(path)!r} does not exist")
    try:
        return open_trace(path, fmt=trace_format, limit=limit)
    except (ValueError, ImportError) as exc:
        raise typer.BadParameter(str(exc)) from exc


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
