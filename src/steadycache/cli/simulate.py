"""``steadycache simulate``: hit ratios of the memory store's eviction policies on a trace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from steadycache.cli._sizing_common import data_note, load_for_cli
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
        int | None, typer.Option("--limit", help="Use only the first N requests.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Replay TRACE through eviction policies at each size and print the hit ratios."""
    from steadycache.sizing.policy_sim import policy_names
    from steadycache.sizing.policy_sim import simulate as run
    from steadycache.sizing.units import format_bytes, parse_sizes

    try:
        sizes, in_bytes = parse_sizes(size)
        names = policy_names(policy)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    loaded = load_for_cli(trace, trace_format, limit)
    keys = loaded.trace.keys.tolist()
    request_sizes = loaded.trace.sizes.tolist() if in_bytes else None
    results = [run(name, capacity, keys, request_sizes) for name in names for capacity in sizes]
    unique = loaded.trace.unique_keys()
    if as_json:
        document = {
            "trace": loaded.trace.name,
            "requests": len(loaded.trace),
            "unique_keys": unique,
            "size_unit": "bytes" if in_bytes else "objects",
            "sample_rate": loaded.sample_rate,
            "source": data_note(loaded.trace.name),
            "results": [
                {"policy": r.policy, "size": r.size, "hit_ratio": r.hit_ratio} for r in results
            ],
        }
        typer.echo(json.dumps(document, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(
        title=f"Hit ratio on {loaded.trace.name}: {len(loaded.trace):,} requests, "
        f"{unique:,} unique keys"
    )
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
    console.print(table)
    console.print(f"sizes in {'bytes' if in_bytes else 'objects'}; best per size in bold")
    if loaded.sample_rate < 1.0:
        console.print(
            f"note: a {loaded.sample_rate:g} spatial sample; hit ratios at size S estimate "
            f"a full cache of about S / {loaded.sample_rate:g}"
        )
    note = data_note(loaded.trace.name)
    if note:
        console.print(note)
