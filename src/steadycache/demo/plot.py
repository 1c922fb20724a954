"""The timeline PNG: requests, database queries and errors over time, one panel per scenario."""

from __future__ import annotations

import math
from pathlib import Path

from steadycache.demo.metrics import EventKind, ScenarioResult
from steadycache.demo.report import DemoReport

_SERIES: tuple[tuple[EventKind, str, str], ...] = (
    ("request", "requests", "tab:blue"),
    ("db_query", "database queries", "tab:orange"),
    ("error", "errors", "tab:red"),
)


def _counts(result: ScenarioResult, kind: EventKind, bins: int, width: float) -> list[int]:
    counts = [0] * bins
    for at, event in result.timeline:
        if event == kind and at >= 0:
            counts[min(bins - 1, int(at / width))] += 1
    return counts


def write_plot(report: DemoReport, path: Path) -> None:
    """Write the timeline of every scenario of ``report`` to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed; must precede pyplot
    import matplotlib.pyplot as plt

    results = report.results
    figure, axes = plt.subplots(
        len(results), 1, figsize=(10, 2.2 * len(results)), squeeze=False, constrained_layout=True
    )
    for axis, result in zip(axes[:, 0], results, strict=True):
        end = max((at for at, _ in result.timeline), default=1.0)
        # About 200 bins per panel, at least a tenth of a simulated second each.
        width = max(0.1, end / 200)
        bins = max(1, math.ceil(end / width))
        starts = [index * width for index in range(bins)]
        for kind, label, colour in _SERIES:
            counts = _counts(result, kind, bins, width)
            axis.step(starts, counts, where="post", label=label, color=colour, linewidth=1)
        axis.set_yscale("symlog", linthresh=10)
        axis.set_title(
            f"{result.name}: {result.db_queries} DB queries, {result.pool_timeouts} pool "
            f"timeouts, {result.errors} errors, p99 {result.p99_ms:.0f} ms",
            fontsize=9,
            loc="left",
        )
        axis.set_ylabel(f"per {width:.2g} s")
        axis.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("simulated seconds since start-up")
    axes[0, 0].legend(loc="upper left", fontsize=8)
    figure.suptitle(
        f"steadycache demo ({report.database}; one query {report.db_query_ms:.1f} ms)",
        fontsize=11,
    )
    figure.savefig(path, dpi=100)
    plt.close(figure)
