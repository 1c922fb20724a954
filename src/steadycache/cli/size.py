"""``steadycache size``: miss-ratio curve, working set, recommended size and its cost."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from steadycache.cli._checks import fraction, module_available, non_negative, writable_output
from steadycache.cli._environment import started_at
from steadycache.cli._sizing_common import (
    check_trace_options,
    data_note,
    load_for_cli,
    reading,
    stderr_console,
    step,
)
from steadycache.cli.app import app

if TYPE_CHECKING:
    from steadycache.sizing.cost import CostEstimate
    from steadycache.sizing.mrc import MissRatioCurve, Unit
    from steadycache.sizing.recommend import Recommendation
    from steadycache.sizing.trace_file import LoadedTrace


@app.command()
def size(
    trace: Annotated[
        Path,
        typer.Argument(
            help="Trace file (.lis, .csv, .txt, .oracleGeneral, .sctrace; optionally .zst)."
        ),
    ],
    target_hit_ratio: Annotated[
        float, typer.Option("--target-hit-ratio", help="Hit ratio the cache must reach (0-1].")
    ] = 0.95,
    prices: Annotated[
        Path | None,
        typer.Option(
            "--prices",
            help="TOML prices file; defaults documented in steadycache/sizing/prices.toml.",
        ),
    ] = None,
    sizes: Annotated[
        str | None,
        typer.Option(
            "--sizes",
            help="Evaluate the curve at these sizes: objects (1000,5000) or bytes (64MB,1GB).",
        ),
    ] = None,
    sample_rate: Annotated[
        float | None,
        typer.Option(
            "--sample-rate",
            help="SHARDS fixed-rate sampling, e.g. 0.01, instead of the exact curve; the sample "
            "is taken while reading, so memory follows the sample, not the trace.",
        ),
    ] = None,
    by_bytes: Annotated[
        bool,
        typer.Option(
            "--bytes", help="Size in bytes (object sizes from the trace) rather than objects."
        ),
    ] = False,
    headroom: Annotated[
        float, typer.Option("--headroom", help="Margin added to the needed size (0.2 = 20%).")
    ] = 0.2,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Write a PNG of the curve with the recommendation marked."),
    ] = None,
    trace_format: Annotated[
        str | None, typer.Option("--format", help="Trace format when the file name does not say.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Use only the first N requests.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of a report.")
    ] = False,
) -> None:
    """Size a cache from TRACE: curve, working set, smallest size for the target, and cost."""
    from steadycache.sizing.cost import load_prices
    from steadycache.sizing.recommend import recommend
    from steadycache.sizing.trace_file import is_steadycache_trace
    from steadycache.sizing.units import parse_sizes

    started = started_at()
    # Every option is checked before the trace is read: a typo must not cost the read.
    fraction(target_hit_ratio, "--target-hit-ratio")
    non_negative(headroom, "--headroom")
    if sample_rate is not None:
        fraction(sample_rate, "--sample-rate")
        if sample_rate < 1.0 and is_steadycache_trace(trace, trace_format):
            raise typer.BadParameter(
                f"{trace.name} is a capture, already a sample: drop --sample-rate",
                param_hint="--sample-rate",
            )
    writable_output(plot, "--plot")
    if plot is not None:
        module_available("matplotlib", "--plot", "--plot")
    check_trace_options(trace, trace_format)
    evaluate_at: list[int] | None = None
    unit: Unit = "bytes" if by_bytes else "objects"
    if sizes is not None:
        try:
            evaluate_at, sizes_in_bytes = parse_sizes(sizes)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--sizes") from exc
        if sizes_in_bytes:
            unit = "bytes"
    try:
        price_list = load_prices(prices)
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--prices") from exc
    console = stderr_console()
    read_started = time.perf_counter()
    with reading(trace, f"reading {trace.name}", console) as progress:
        loaded = load_for_cli(
            trace, trace_format, limit, sample_rate=sample_rate, progress=progress
        )
    read_seconds = time.perf_counter() - read_started
    curve_started = time.perf_counter()
    with step("computing the miss-ratio curve", console):
        curve = _curve(loaded, unit)
    curve_seconds = time.perf_counter() - curve_started
    try:
        recommendation = recommend(curve, target_hit_ratio, headroom=headroom)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    with step("measuring the working set", console):
        facts = _trace_facts(loaded)
        working_sets = _working_sets(loaded, facts)
    cost = _cost(price_list, recommendation, curve, facts)
    points = evaluate_at if evaluate_at is not None else curve.default_sizes(30)
    document: dict[str, Any] = {
        "trace": loaded.trace.name,
        "requests": facts["requests"],
        "unique_keys": facts["unique_keys"],
        "working_set": working_sets,
        "curve": [
            {"size": s, "miss_ratio": float(m)}
            for s, m in zip(points, curve.miss_ratios(points), strict=True)
        ],
        "size_unit": unit,
        "exact": curve.exact,
        "sample_rate": curve.sample_rate,
        "target_hit_ratio": target_hit_ratio,
        "recommended_size": recommendation.recommended_size,
        "recommendation": {
            "needed_size": recommendation.needed_size,
            "headroom": recommendation.headroom,
            "hit_ratio_at_needed": recommendation.hit_ratio_at_needed,
            "hit_ratio_at_recommended": recommendation.hit_ratio_at_recommended,
            "best_hit_ratio": recommendation.best_hit_ratio,
        },
        "cost": None if cost is None else cost.to_json(),
        "read_seconds": read_seconds,
        "curve_seconds": curve_seconds,
        # Since the process started (start-up included); set last, once the rest has run.
        "total_seconds": 0.0,
        "source": data_note(loaded.trace.name),
    }
    if plot is not None:
        from steadycache.sizing.plot import plot_curve

        note = data_note(loaded.trace.name) or ""
        try:
            plot_curve(
                curve,
                recommendation,
                plot,
                title=f"{loaded.trace.name}: {facts['requests']:,} requests, "
                f"{facts['unique_keys']:,} unique keys",
                footnote=note,
            )
        except OSError as exc:
            raise typer.BadParameter(
                f"cannot write {plot}: {exc.strerror or exc}", param_hint="--plot"
            ) from exc
    document["total_seconds"] = time.perf_counter() - started
    if as_json:
        typer.echo(json.dumps(document, indent=2))
        return
    _print_report(document, recommendation, cost, data_note(loaded.trace.name), plot)


def _curve(loaded: LoadedTrace, unit: Unit) -> MissRatioCurve:
    from steadycache.sizing.mrc import exact_curve
    from steadycache.sizing.shards import presampled_curve

    if loaded.sample_rate < 1.0:
        # A capture, or a SHARDS sample taken while reading (--sample-rate): the same curve
        # fixed_rate_curve gives on the whole trace, from the sample alone.
        return presampled_curve(
            loaded.trace, loaded.sample_rate, unit, total_requests=loaded.observed_requests
        )
    return exact_curve(loaded.trace, unit)


def _trace_facts(loaded: LoadedTrace) -> dict[str, Any]:
    """Request count, distinct keys and bytes, scaled up when the trace is a sample.

    What the reader counted over every request (requests, bytes, first and last time) is
    exact even for a sample; distinct keys and bytes are the sample's, divided by its rate.
    """
    import numpy as np

    trace = loaded.trace
    scale = 1.0 / loaded.sample_rate
    unique, last_index = np.unique(trace.keys[::-1], return_index=True)
    distinct_bytes = float(trace.sizes[::-1][last_index].sum()) if unique.shape[0] else 0.0
    requests = loaded.observed_requests or round(len(trace) * scale)
    if loaded.observed_bytes is not None and requests:
        mean_request_bytes = loaded.observed_bytes / requests
    else:
        mean_request_bytes = float(trace.sizes.mean()) if len(trace) else 0.0
    duration = None
    if loaded.time_span is not None:
        duration = (loaded.time_span[1] - loaded.time_span[0]) or None
    elif trace.times is not None and len(trace) > 1:
        duration = float(trace.times[-1] - trace.times[0]) or None
    return {
        "requests": int(requests),
        "unique_keys": round(unique.shape[0] * scale),
        "unique_bytes": distinct_bytes * scale,
        "mean_object_bytes": distinct_bytes / unique.shape[0] if unique.shape[0] else 0.0,
        "mean_request_bytes": mean_request_bytes,
        "duration_seconds": duration,
    }


def _working_sets(loaded: LoadedTrace, facts: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    from steadycache.sizing.working_set import default_windows, working_set

    scale = 1.0 / loaded.sample_rate
    windows = []
    for window in default_windows(loaded.trace, loaded.observed_requests):
        series = working_set(loaded.trace, window, positions=loaded.positions)
        summary = series.summary()
        for field in ("mean_keys", "max_keys", "mean_bytes", "max_bytes"):
            summary[field] = float(summary[field]) * scale
        if scale != 1.0 and series.unit == "requests" and series.keys.shape[0]:
            # A sample's estimate can overshoot: a window of N requests has at most N keys
            # (and the bytes of those keys are cut in the same proportion).
            estimated = series.keys * scale
            keys = np.minimum(estimated, window)
            cut = np.divide(keys, estimated, out=np.ones_like(keys), where=estimated > 0)
            touched = series.bytes * scale * cut
            summary.update(
                mean_keys=float(keys.mean()),
                max_keys=float(keys.max()),
                mean_bytes=float(touched.mean()),
                max_bytes=float(touched.max()),
            )
        windows.append(summary)
    return {
        "total_keys": facts["unique_keys"],
        "total_bytes": facts["unique_bytes"],
        "windows": windows,
    }


def _cost(
    price_list: Any, recommendation: Recommendation, curve: MissRatioCurve, facts: dict[str, Any]
) -> CostEstimate | None:
    from steadycache.sizing.cost import FALLBACK_REQUESTS_PER_SECOND, estimate_cost

    if recommendation.recommended_size is None or recommendation.hit_ratio_at_recommended is None:
        return None
    object_bytes = facts["mean_object_bytes"] or 1.0
    if curve.unit == "objects":
        entries = float(recommendation.recommended_size)
        cache_bytes = entries * object_bytes
    else:
        cache_bytes = float(recommendation.recommended_size)
        entries = cache_bytes / object_bytes
    rate = price_list.requests_per_second
    if not rate:
        duration = facts["duration_seconds"]
        rate = facts["requests"] / duration if duration else FALLBACK_REQUESTS_PER_SECOND
    return estimate_cost(
        price_list,
        cache_bytes=cache_bytes,
        entries=entries,
        hit_ratio=recommendation.hit_ratio_at_recommended,
        mean_value_bytes=price_list.mean_value_bytes or facts["mean_request_bytes"],
        requests_per_second=rate,
    )


def _print_report(
    document: dict[str, Any],
    recommendation: Recommendation,
    cost: CostEstimate | None,
    note: str | None,
    plot: Path | None,
) -> None:
    from rich.console import Console
    from rich.table import Table

    from steadycache.sizing.units import format_bytes

    console = Console()
    unit = document["size_unit"]
    sampled = document["sample_rate"] < 1.0
    kind = "exact LRU" if document["exact"] else f"SHARDS sample, rate {document['sample_rate']:g}"
    console.rule(f"[bold]steadycache size[/bold] {document['trace']}")
    working = document["working_set"]
    console.print(
        f"{document['requests']:,} requests, {'about ' if sampled else ''}"
        f"{document['unique_keys']:,} unique keys "
        f"({format_bytes(working['total_bytes'])} if all were cached); curve: {kind}; "
        f"took {document['total_seconds']:.1f} s (reading the trace "
        f"{document['read_seconds']:.1f} s, the curve {document['curve_seconds']:.1f} s)"
    )
    if sampled:
        console.print(
            "Unique keys and working sets are estimated from the sample (its counts divided "
            "by the rate); request counts are exact."
        )
    table = Table(title="Working set per window (distinct keys / bytes touched)")
    for column in ("window", "windows", "mean keys", "peak keys", "mean bytes", "peak bytes"):
        table.add_column(column, justify="right")
    for window in working["windows"]:
        label = f"{window['window']:,.0f} {window['unit']}"
        table.add_row(
            label,
            f"{window['windows']:,}",
            f"{window['mean_keys']:,.0f}",
            f"{window['max_keys']:,.0f}",
            format_bytes(window["mean_bytes"]),
            format_bytes(window["max_bytes"]),
        )
    console.print(table)
    curve_table = Table(title=f"LRU miss-ratio curve (size in {unit})")
    curve_table.add_column("size", justify="right")
    curve_table.add_column("miss ratio", justify="right")
    curve_table.add_column("hit ratio", justify="right")
    for point in document["curve"]:
        shown = format_bytes(point["size"]) if unit == "bytes" else f"{point['size']:,}"
        curve_table.add_row(shown, f"{point['miss_ratio']:.4f}", f"{1 - point['miss_ratio']:.4f}")
    console.print(curve_table)
    target = recommendation.target_hit_ratio
    if recommendation.needed_size is None or recommendation.recommended_size is None:
        console.print(
            f"[bold red]A hit ratio of {target:g} is out of reach[/bold red]: even an unbounded "
            f"LRU cache reaches {recommendation.best_hit_ratio:.4f} on this trace (first "
            "accesses always miss)."
        )
    else:

        def describe(value: int) -> str:
            return format_bytes(value) if unit == "bytes" else f"{value:,} {unit}"

        console.print(
            f"[bold]Recommendation[/bold] for hit ratio {target:g}: needed "
            f"{describe(recommendation.needed_size)} (hit ratio "
            f"{recommendation.hit_ratio_at_needed:.4f}); provision "
            f"[bold]{describe(recommendation.recommended_size)}[/bold] with "
            f"{recommendation.headroom:.0%} headroom (hit ratio "
            f"{recommendation.hit_ratio_at_recommended:.4f}). Headroom covers growth, drift "
            "and per-entry overhead; the curve is LRU's, other policies usually do as well "
            "or better (check with `steadycache simulate`)."
        )
    if cost is not None:
        console.print(
            f"[bold]Cost per month[/bold] at {cost.requests_per_second:,.0f} requests/s: "
            f"memory {cost.memory_gb:,.3f} GB = ${cost.memory_usd:,.2f}; database load saved "
            f"{cost.queries_saved / 1e6:,.1f}M queries = ${cost.database_usd_saved:,.2f}; "
            f"cross-zone transfer {cost.cross_zone_gb:,.1f} GB = ${cost.cross_zone_usd:,.2f}; "
            f"net ${cost.net_usd:,.2f}"
        )
    if plot is not None:
        console.print(f"plot written to {plot}")
    if note:
        console.print(note)
