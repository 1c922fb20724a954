"""Exact and SHARDS miss-ratio curves against libCacheSim's LRU, on the shared traces.

One run: ``python benchmarks/sizing_vs_libcachesim.py [TRACE ...]``. For each trace:

- the exact one-pass curve (objects) against libCacheSim LRU simulated separately at 20
  sizes (cache counted in objects): identical miss counts expected at every size;
- the time of the one pass against the time of those 20 simulations;
- SHARDS fixed-rate at 1% (and fixed-size, 8,192 keys): mean absolute error against the
  exact curve, and time.

Writes ``benchmarks/results/sizing_vs_libcachesim.{md,json}``. P3/P6/P12 are from
Megiddo & Modha, "ARC: A Self-Tuning, Low Overhead Replacement Cache", USENIX FAST 2003.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import libcachesim as lcs
import numpy as np

from steadycache.sizing.mrc import exact_curve
from steadycache.sizing.readers import Trace, load_trace
from steadycache.sizing.shards import fixed_rate_curve, fixed_size_curve

TRACES = Path(__file__).resolve().parents[2] / "shared" / "traces"
DEFAULT_TRACES = ["P3.lis.zst", "P6.lis.zst", "P12.lis.zst", "cloudPhysicsIO.csv"]
RESULTS = Path(__file__).resolve().parent / "results"
SIMULATED_SIZES = 20
SHARDS_RATE = 0.01
SHARDS_KEYS = 8192
#: Requests and unique keys the ARC paper (Table III) publishes for the traces, as expanded by
#: the reader: a mismatch means the reader is wrong, and the run stops.
PUBLISHED_COUNTS = {
    "P3.lis.zst": (3_912_296, 762_543),
    "P6.lis.zst": (12_672_123, 773_770),
    "P12.lis.zst": (13_208_930, 3_153_310),
    "cloudPhysicsIO.csv": (113_872, 48_974),
}


def write_oracle_general(trace: Trace, path: Path) -> None:
    """libCacheSim's binary format, every object of size 1 (the cache counts objects)."""
    records = np.zeros(
        len(trace),
        dtype=[("time", "<u4"), ("obj_id", "<u8"), ("obj_size", "<u4"), ("next", "<i8")],
    )
    records["obj_id"] = trace.keys.view(np.uint64)
    records["obj_size"] = 1
    records["next"] = -1
    records.tofile(path)


def libcachesim_lru(path: Path, sizes: list[int]) -> tuple[list[float], float]:
    """Miss ratio of libCacheSim's LRU at each size (one simulation each) and total time."""
    reader = lcs.TraceReader(
        str(path), lcs.TraceType.ORACLE_GENERAL_TRACE, lcs.ReaderInitParam(ignore_obj_size=True)
    )
    ratios: list[float] = []
    started = time.perf_counter()
    for size in sizes:
        miss_ratio, _ = lcs.LRU(size).process_trace(reader)
        ratios.append(float(miss_ratio))
    return ratios, time.perf_counter() - started


def evaluate(name: str) -> dict[str, Any]:
    started = time.perf_counter()
    trace = load_trace(TRACES / name)
    load_seconds = time.perf_counter() - started
    n = len(trace)
    unique = trace.unique_keys()
    published = PUBLISHED_COUNTS.get(name)
    if published is not None and (n, unique) != published:
        raise SystemExit(f"{name}: read {n:,} requests / {unique:,} keys, published {published}")

    started = time.perf_counter()
    exact = exact_curve(trace)
    exact_seconds = time.perf_counter() - started

    sizes = sorted({int(s) for s in np.geomspace(10, unique, SIMULATED_SIZES)})
    with tempfile.TemporaryDirectory() as tmp:
        oracle = Path(tmp) / "trace.oracleGeneral"
        write_oracle_general(trace, oracle)
        reference, reference_seconds = libcachesim_lru(oracle, sizes)
    ours = exact.miss_ratios(sizes)
    # Compare miss counts, not floats: "identical" means the same requests missed.
    ours_misses = np.rint(ours * n).astype(np.int64)
    reference_misses = np.rint(np.array(reference) * n).astype(np.int64)
    identical = int((ours_misses == reference_misses).sum())

    grid_log = np.unique(np.rint(np.geomspace(1, unique, 100)))
    grid_linear = np.linspace(unique / 100, unique, 100)

    started = time.perf_counter()
    rate_curve = fixed_rate_curve(trace, SHARDS_RATE)
    rate_seconds = time.perf_counter() - started
    started = time.perf_counter()
    size_curve = fixed_size_curve(trace, SHARDS_KEYS)
    size_seconds = time.perf_counter() - started

    def mae(curve: Any, grid: Any) -> float:
        return float(np.abs(curve.miss_ratios(grid) - exact.miss_ratios(grid)).mean())

    return {
        "trace": name,
        "requests": n,
        "unique_keys": unique,
        "load_seconds": load_seconds,
        "exact_seconds": exact_seconds,
        "libcachesim_sizes": len(sizes),
        "libcachesim_seconds": reference_seconds,
        "sizes": sizes,
        "exact_miss_ratios": [float(x) for x in ours],
        "libcachesim_miss_ratios": reference,
        "identical_sizes": identical,
        "max_abs_difference": float(np.abs(ours - np.array(reference)).max()),
        "shards_rate": SHARDS_RATE,
        "shards_rate_seconds": rate_seconds,
        "shards_rate_mae_log_grid": mae(rate_curve, grid_log),
        "shards_rate_mae_linear_grid": mae(rate_curve, grid_linear),
        "shards_rate_sampled_requests": round((rate_curve.total - rate_curve.adjust) * SHARDS_RATE),
        "shards_size_keys": SHARDS_KEYS,
        "shards_size_final_rate": size_curve.sample_rate,
        "shards_size_seconds": size_seconds,
        "shards_size_mae_log_grid": mae(size_curve, grid_log),
        "shards_size_mae_linear_grid": mae(size_curve, grid_linear),
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "# Miss-ratio curves: steadycache vs libCacheSim LRU",
        "",
        "One run on this machine (2 cores, shared). Cache size counted in objects. "
        f"libCacheSim {lcs.__version__ if hasattr(lcs, '__version__') else '0.3.5'} simulates "
        "LRU once per size; steadycache computes the whole exact curve in one pass. "
        "MAE: mean absolute error of the miss ratio against the exact curve, over 100 sizes "
        "log-spaced (1 to unique keys) and 100 sizes evenly spaced (1% to 100% of unique keys).",
        "",
        "| trace | requests | unique keys | exact curve, 1 pass (s) | libCacheSim LRU, "
        f"{SIMULATED_SIZES} sizes (s) | speed-up | sizes identical | SHARDS {SHARDS_RATE:.0%} (s) "
        f"| SHARDS {SHARDS_RATE:.0%} MAE log / linear "
        f"| SHARDS {SHARDS_KEYS:,} keys MAE log / linear (final rate) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['trace']} | {row['requests']:,} | {row['unique_keys']:,} "
            f"| {row['exact_seconds']:.1f} | {row['libcachesim_seconds']:.1f} "
            f"| {row['libcachesim_seconds'] / row['exact_seconds']:.1f}x "
            f"| {row['identical_sizes']}/{row['libcachesim_sizes']} "
            f"| {row['shards_rate_seconds']:.2f} "
            f"| {row['shards_rate_mae_log_grid']:.4f} / {row['shards_rate_mae_linear_grid']:.4f} "
            f"| {row['shards_size_mae_log_grid']:.4f} / {row['shards_size_mae_linear_grid']:.4f} "
            f"({row['shards_size_final_rate']:.4f}) |"
        )
    lines += [
        "",
        "Trace load time (decompress and expand, not included above): "
        + ", ".join(f"{r['trace']} {r['load_seconds']:.1f} s" for r in rows)
        + ".",
        "",
        'P3, P6 and P12: N. Megiddo and D. S. Modha, "ARC: A Self-Tuning, Low Overhead '
        'Replacement Cache", USENIX FAST 2003. cloudPhysicsIO: CloudPhysics block I/O sample '
        "shipped with libCacheSim.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    names = sys.argv[1:] or DEFAULT_TRACES
    rows = []
    for name in names:
        row = evaluate(name)
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if not isinstance(v, list)}), flush=True)
    report = markdown(rows)
    print(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sizing_vs_libcachesim.md").write_text(report)
    (RESULTS / "sizing_vs_libcachesim.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
