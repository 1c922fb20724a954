"""``steadycache simulate``: hit ratios of the memory store's eviction policies on a trace."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from steadycache.cli._environment import started_at
from steadycache.cli._sizing_common import (
    check_trace_options,
    data_note,
    load_for_cli,
    reading,
    stderr_console,
    stream_for_cli,
)
from steadycache.cli.app import app


@app.command()
def simulate(
    trace: Annotated[
        Path,
        typer.Argument(
            help="Trace file (.lis, .csv, .txt, .oracleGeneral, .sctrace; optionally .zst)."
        ),
    ],
    size: Annotated[
        str,
        typer.Option(
            "--size",
            help="Cache sizes, comma-separated: objects (1000) or bytes with a unit (64MB).",
        ),
    ],
    policy: Annotated[
        str,
        typer.Option(
            "--policy",
            help="Policies, comma-separated: lru, lfu, fifo, arc, sieve, s3fifo, wtinylfu, ttl, "
            "default.",
        ),
    ] = "default",
    trace_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="Trace format when the file name does not say "
            "(lis, csv, txt, oracleGeneral, steadycache).",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Use only the first N requests.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Replay TRACE through eviction policies at each size and print the hit ratios."""
    from steadycache.sizing.policy_sim import Replay, policy_names
    from steadycache.sizing.readers import DistinctKeys
    from steadycache.sizing.trace_file import is_steadycache_trace
    from steadycache.sizing.units import format_bytes, parse_sizes

    started = started_at()
    try:
        sizes, in_bytes = parse_sizes(size)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--size") from exc
    try:
        names = policy_names(policy)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--policy") from exc
    check_trace_options(trace, trace_format)
    replay = Replay(names, sizes, by_bytes=in_bytes)
    console = stderr_console()
    description = (
        f"replaying {trace.name} through {len(names)} "
        f"polic{'y' if len(names) == 1 else 'ies'} x {len(sizes)} size{'s' * (len(sizes) > 1)}"
    )
    with reading(trace, description, console) as progress:
        if is_steadycache_trace(trace, trace_format):
            # A capture is a sample, already small: read whole (it carries its rate).
            loaded = load_for_cli(trace, trace_format, limit, progress=progress)
            replay.feed(
                loaded.trace.keys.tolist(), loaded.trace.sizes.tolist() if in_bytes else None
            )
            sample_rate = loaded.sample_rate
            requests, unique = len(loaded.trace), loaded.trace.unique_keys()
        else:
            # Streamed: the trace is never held whole, whatever its length.
            distinct = DistinctKeys()
            for chunk in stream_for_cli(trace, trace_format, limit, progress):
                replay.feed(chunk.keys.tolist(), chunk.sizes.tolist() if in_bytes else None)
                distinct.add(chunk.keys)
            sample_rate = 1.0
            requests, unique = replay.requests, distinct.count()
    results = replay.results()
    seconds = time.perf_counter() - started
    trace_name = trace.name
    if as_json:
        document = {
            "trace": trace_name,
            "requests": requests,
            "unique_keys": unique,
            "size_unit": "bytes" if in_bytes else "objects",
            "sample_rate": sample_rate,
            "seconds": seconds,
            "source": data_note(trace_name),
            "results": [
                {"policy": r.policy, "size": r.size, "hit_ratio": r.hit_ratio} for r in results
            ],
        }
        typer.echo(json.dumps(document, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    out = Console()
    table = Table(title=f"Hit ratio on {trace_name}: {requests:,} requests, {unique:,} unique keys")
    table.add_column("policy")
    for capacity in sizes:
        table.add_column(format_bytes(capacity) if in_bytes else f"{capacity:,}", justify="right")
    for name in names:
        row = [r for r in results if r.policy == name]
        best = {c: max(r.hit_ratio for r in results if r.size == c) for c in sizes}
        table.add_row(
            name,
            *(
                f"[bold]{r.hit_ratio:.4f}[/bold]"
                if r.hit_ratio == best[r.size]
                else f"{r.hit_ratio:.4f}"
                for r in row
            ),
        )
    out.print(table)
    out.print(
        f"sizes in {'bytes' if in_bytes else 'objects'}; best per size in bold; "
        f"took {seconds:.1f} s"
    )
    if sample_rate < 1.0:
        out.print(
            f"note: a {sample_rate:g} spatial sample; hit ratios at size S estimate "
            f"a full cache of about S / {sample_rate:g}"
        )
    note = data_note(trace_name)
    if note:
        out.print(note)
