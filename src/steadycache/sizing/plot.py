"""The miss-ratio curve as a PNG, with the target and the recommended size marked."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from steadycache.sizing.mrc import MissRatioCurve
from steadycache.sizing.recommend import Recommendation


def plot_curve(
    curve: MissRatioCurve,
    recommendation: Recommendation | None,
    path: str | Path,
    *,
    title: str,
    footnote: str = "",
) -> None:
    """Write the curve to ``path`` (PNG). Needs matplotlib (the ``sizing`` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed; must precede pyplot's import
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "plotting needs matplotlib; install the sizing extra: pip install 'steadycache[sizing]'"
        ) from exc
    top = max(2.0, curve.max_useful_size * 1.5)
    sizes = np.unique(np.round(np.geomspace(1.0, top, 400)))
    miss = curve.miss_ratios(sizes)
    unit = "objects" if curve.unit == "objects" else "bytes"
    figure, axes = plt.subplots(figsize=(9, 5.5), dpi=120)
    label = (
        "LRU miss ratio (exact)"
        if curve.exact
        else f"LRU miss ratio (SHARDS, R={curve.sample_rate:g})"
    )
    axes.plot(sizes, miss, color="#1f77b4", linewidth=2, label=label)
    axes.axhline(
        curve.floor,
        color="grey",
        linestyle=":",
        linewidth=1,
        label=f"cold-miss floor {curve.floor:.3f}",
    )
    if recommendation is not None:
        target_miss = 1.0 - recommendation.target_hit_ratio
        axes.axhline(
            target_miss,
            color="#d62728",
            linestyle="--",
            linewidth=1,
            label=f"target: miss ratio {target_miss:.3g} "
            f"(hit ratio {recommendation.target_hit_ratio:g})",
        )
        if recommendation.needed_size is not None and recommendation.recommended_size is not None:
            axes.axvline(
                recommendation.needed_size,
                color="#2ca02c",
                linestyle="--",
                linewidth=1,
                label=f"needed {recommendation.needed_size:,} {unit}",
            )
            axes.axvline(
                recommendation.recommended_size,
                color="#2ca02c",
                linewidth=2,
                label=f"recommended {recommendation.recommended_size:,} {unit} "
                f"(+{recommendation.headroom:.0%} headroom)",
            )
            axes.plot(
                [recommendation.recommended_size],
                [curve.miss_ratio(recommendation.recommended_size)],
                marker="o",
                color="#2ca02c",
                markersize=8,
            )
    axes.set_xscale("log")
    axes.set_ylim(0.0, 1.02)
    axes.set_xlim(1.0, top)
    axes.set_xlabel(f"cache size ({unit}, log scale)")
    axes.set_ylabel("miss ratio")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower left", fontsize=9)
    if footnote:
        figure.text(0.01, 0.01, footnote, fontsize=7, color="dimgrey")
    figure.tight_layout(rect=(0, 0.03 if footnote else 0, 1, 1))
    figure.savefig(str(path), format="png")
    plt.close(figure)
