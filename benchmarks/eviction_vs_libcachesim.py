"""Hit ratios of steadycache's eviction policies against libCacheSim's, on real traces.

Run: ``.venv/bin/python benchmarks/eviction_vs_libcachesim.py [--traces P3 cloudPhysicsIO]
[--out benchmarks/results]``. Every cache is counted in objects (sizes ignored), at 1%, 5%
and 10% of the trace's unique keys. Writes ``eviction_vs_libcachesim.{md,json}``; progress
is appended to ``eviction_vs_libcachesim.partial.jsonl`` so an interrupted run keeps its
finished rows (``--resume`` skips them; ``--render-partial`` writes the tables from them).

The P3/P6/P12 traces are from Megiddo & Modha, "ARC: A Self-Tuning, Low Overhead
Replacement Cache", USENIX FAST 2003, which must be cited wherever results on them appear.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import libcachesim
import numpy as np

from steadycache.eviction import POLICIES, make_policy
from steadycache.sizing.readers import Trace, load_trace

TRACE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
DEFAULT_TRACES = ("cloudPhysicsIO.csv", "P3.lis.zst", "P6.lis.zst", "P12.lis.zst")
SIZE_FRACTIONS = (0.01, 0.05, 0.10)
MAX_WORKERS = 2
CHUNK = 1 << 20  # requests converted to Python ints at a time (bounds memory on P12)

#: libCacheSim class compared with each policy, with its tolerance in percentage points.
#: ``ttl`` has no libCacheSim counterpart; with no TTLs in these traces it is FIFO by design.
#: ``wtinylfu-adaptive`` is a different algorithm (hill-climbed window): shown, not judged.
REFERENCE: dict[str, tuple[str, float | None]] = {
    "lru": ("LRU", 0.05),
    "fifo": ("FIFO", 0.05),
    "arc": ("ARC", 0.05),
    "ttl": ("FIFO", 0.05),
    "sieve": ("Sieve", 0.5),
    "s3fifo": ("S3FIFO", 0.5),
    "wtinylfu": ("WTinyLFU", 0.5),
    "lfu": ("LFU", 1.0),
    "wtinylfu-adaptive": ("WTinyLFU", None),
}

ARC_CITATION = (
    "Traces P3, P6 and P12: Nimrod Megiddo and Dharmendra S. Modha, "
    '"ARC: A Self-Tuning, Low Overhead Replacement Cache", USENIX FAST 2003.'
)


@dataclass(frozen=True)
class Job:
    trace_path: str
    oracle_path: str  # the same requests in libCacheSim's binary format
    fraction: float
    capacity: int
    policy: str


@dataclass(frozen=True)
class Row:
    trace: str
    fraction: float
    capacity: int
    policy: str
    reference: str
    ours: float  # hit ratio, percent
    libcachesim: float
    diff_pp: float
    tolerance_pp: float | None
    within: bool | None
    seconds: float


_loaded: dict[str, Trace] = {}  # per worker: the last trace, reused by the next jobs


def _trace(path: str) -> Trace:
    if path not in _loaded:
        _loaded.clear()  # one trace at a time: P12 alone is 13M requests
        _loaded[path] = load_trace(path)
    return _loaded[path]


def our_hit_ratio(policy_name: str, capacity: int, keys: np.ndarray[Any, Any]) -> float:
    """Feed every request to the policy; object-counted cache (every size is 1)."""
    policy = make_policy(policy_name, capacity)
    on_hit, on_insert = policy.on_hit, policy.on_insert
    hits = 0
    for start in range(0, len(keys), CHUNK):
        for key in keys[start : start + CHUNK].tolist():
            if key in policy:
                on_hit(key)
                hits += 1
            else:
                on_insert(key, 1)
    return hits / len(keys)


def reference_hit_ratio(class_name: str, capacity: int, oracle_path: str) -> float:
    """libCacheSim's own trace loop (C), counting the cache in objects."""
    reader = libcachesim.TraceReader(
        oracle_path,
        libcachesim.TraceType.ORACLE_GENERAL_TRACE,
        libcachesim.ReaderInitParam(ignore_obj_size=True),
    )
    cache = getattr(libcachesim, class_name)(capacity)
    miss_ratio, _ = cache.process_trace(reader)
    return 1.0 - float(miss_ratio)


def write_oracle_general(keys: np.ndarray[Any, Any], path: Path) -> None:
    """The keys as libCacheSim oracleGeneral records (time, obj_id, size=1, next=-1)."""
    records = np.zeros(
        len(keys), dtype=[("time", "<u4"), ("id", "<u8"), ("size", "<u4"), ("next", "<i8")]
    )
    records["time"] = np.arange(len(keys)) // 1000  # monotone; unused by these policies
    records["id"] = keys.view(np.uint64)
    records["size"] = 1
    records["next"] = -1
    records.tofile(path)


def run_job(job: Job) -> Row:
    started = time.perf_counter()
    reference, tolerance = REFERENCE[job.policy]
    ours = our_hit_ratio(job.policy, job.capacity, _trace(job.trace_path).keys) * 100
    theirs = reference_hit_ratio(reference, job.capacity, job.oracle_path) * 100
    diff = ours - theirs
    return Row(
        trace=Path(job.trace_path).name.split(".")[0],
        fraction=job.fraction,
        capacity=job.capacity,
        policy=job.policy,
        reference=reference,
        ours=ours,
        libcachesim=theirs,
        diff_pp=diff,
        tolerance_pp=tolerance,
        within=None if tolerance is None else abs(diff) <= tolerance,
        seconds=time.perf_counter() - started,
    )


def complete_cells(rows: list[Row]) -> set[tuple[str, float]]:
    """The trace x size cells in which every policy present in ``rows`` has a result."""
    policies = {row.policy for row in rows}
    by_cell: dict[tuple[str, float], set[str]] = {}
    for row in rows:
        by_cell.setdefault((row.trace, row.fraction), set()).add(row.policy)
    return {cell for cell, present in by_cell.items() if present == policies}


def default_choice(rows: list[Row]) -> tuple[str | None, dict[str, tuple[float, str]]]:
    """Per policy, its worst shortfall behind the best policy over all traces x sizes.

    Only trace x size cells where every policy has a result count, so that a partial run
    cannot flatter a policy that simply has fewer cells.
    """
    cells = complete_cells(rows)
    rows = [row for row in rows if (row.trace, row.fraction) in cells]
    best: dict[tuple[str, float], float] = {}
    for row in rows:
        cell = (row.trace, row.fraction)
        best[cell] = max(best.get(cell, 0.0), row.ours)
    worst: dict[str, tuple[float, str]] = {}
    for row in rows:
        shortfall = best[(row.trace, row.fraction)] - row.ours
        where = f"{row.trace} @ {row.fraction:.0%}"
        if row.policy not in worst or shortfall > worst[row.policy][0]:
            worst[row.policy] = (shortfall, where)
    if not worst:
        return None, worst
    chosen = min(worst, key=lambda name: (worst[name][0], name))
    return chosen, worst


def render_markdown(rows: list[Row], complete: bool) -> str:
    rows = sorted(rows, key=lambda r: (r.trace, r.fraction, list(POLICIES).index(r.policy)))
    traces = sorted({row.trace for row in rows})
    lines = [
        "# Eviction policies vs libCacheSim",
        "",
        f"Generated by `benchmarks/eviction_vs_libcachesim.py` with libcachesim "
        f"{libcachesim.__version__}. Hit ratios in percent; caches counted in objects at "
        "1%, 5% and 10% of each trace's unique keys. `ttl` is compared with libCacheSim's FIFO "
        "(no TTLs in these traces, so TTL-nearest degenerates to insertion order); "
        "`wtinylfu-adaptive` is shown next to libCacheSim's fixed-window WTinyLFU for "
        "information only (different algorithm, no tolerance).",
        "",
    ]
    if any(trace in {"P3", "P6", "P12"} for trace in traces):
        lines += [ARC_CITATION, ""]
    if not complete:
        lines += ["**Partial results: the run has not finished.**", ""]
    lines += [
        "| trace | size | capacity | policy | ours % | libCacheSim % | diff pp | tolerance pp "
        "| within |",
        "|---|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        tolerance = "n/a" if row.tolerance_pp is None else f"{row.tolerance_pp:.2f}"
        within = "n/a" if row.within is None else ("yes" if row.within else "**no**")
        lines.append(
            f"| {row.trace} | {row.fraction:.0%} | {row.capacity} | {row.policy} "
            f"({row.reference}) | {row.ours:.4f} | {row.libcachesim:.4f} | {row.diff_pp:+.4f} "
            f"| {tolerance} | {within} |"
        )
    chosen, worst = default_choice(rows)
    lines += [
        "",
        "## Choosing the default policy",
        "",
        "For each policy, its worst shortfall (percentage points of hit ratio) behind the best "
        "of our policies on the same trace and size, over every trace x size above. The default "
        "is the policy whose worst case is mildest.",
        "",
    ]
    if any(trace in {"P3", "P6", "P12"} for trace in traces):
        lines += [ARC_CITATION, ""]
    lines += ["| policy | worst shortfall pp | where |", "|---|---:|---|"]
    for name in sorted(worst, key=lambda n: worst[n][0]):
        shortfall, where = worst[name]
        lines.append(f"| {name} | {shortfall:.4f} | {where} |")
    cells = sorted(complete_cells(rows))
    lines += [
        "",
        "Cells judged (trace x size with every policy finished): "
        + (", ".join(f"{trace} @ {fraction:.0%}" for trace, fraction in cells) or "none"),
        "",
        f"**Default: `{chosen}`**" + ("" if complete else " (provisional)"),
        "",
    ]
    return "\n".join(lines)


def write_outputs(rows: list[Row], out: Path, complete: bool) -> str:
    markdown = render_markdown(rows, complete)
    (out / "eviction_vs_libcachesim.md").write_text(markdown)
    chosen, worst = default_choice(rows)
    payload = {
        "libcachesim_version": libcachesim.__version__,
        "complete": complete,
        "citation": ARC_CITATION,
        "default_policy": chosen,
        "worst_shortfall_pp": {name: value[0] for name, value in worst.items()},
        "rows": [asdict(row) for row in rows],
    }
    (out / "eviction_vs_libcachesim.json").write_text(json.dumps(payload, indent=2) + "\n")
    return markdown


def _resolve(trace: str) -> Path:
    path = Path(trace)
    if path.exists():
        return path
    for candidate in sorted(TRACE_DIR.glob(f"{trace}*")):
        return candidate
    raise SystemExit(f"trace {trace!r} not found (looked in {TRACE_DIR})")


def plan_jobs(traces: Iterable[Path], policies: list[str], scratch: Path) -> list[Job]:
    jobs: list[Job] = []
    for path in traces:
        trace = load_trace(path)
        unique = trace.unique_keys()
        oracle = scratch / f"{path.name}.oracleGeneral"
        write_oracle_general(trace.keys, oracle)
        for fraction in SIZE_FRACTIONS:
            capacity = int(unique * fraction)
            jobs += [Job(str(path), str(oracle), fraction, capacity, name) for name in policies]
    return jobs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--traces", nargs="+", default=list(DEFAULT_TRACES))
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=list(POLICIES))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--workers", type=int, default=MAX_WORKERS)
    parser.add_argument("--resume", action="store_true", help="skip rows already in .partial")
    parser.add_argument(
        "--render-partial",
        action="store_true",
        help="only write the .md/.json from the rows finished so far (marked partial)",
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    partial = args.out / "eviction_vs_libcachesim.partial.jsonl"
    done: list[Row] = []
    if (args.resume or args.render_partial) and partial.exists():
        done = [Row(**json.loads(line)) for line in partial.read_text().splitlines() if line]
    if args.render_partial:
        print(write_outputs(done, args.out, complete=False))
        return 0
    if not args.resume and partial.exists():
        partial.unlink()  # a fresh run must not mix in rows of an older one
    finished = {(row.trace, row.fraction, row.policy) for row in done}

    with tempfile.TemporaryDirectory(prefix="eviction-bench-") as scratch:
        jobs = [
            job
            for job in plan_jobs([_resolve(t) for t in args.traces], args.policies, Path(scratch))
            if (Path(job.trace_path).name.split(".")[0], job.fraction, job.policy) not in finished
        ]
        print(f"{len(jobs)} simulations to run ({len(done)} resumed)", flush=True)
        rows = list(done)
        workers = max(1, min(args.workers, MAX_WORKERS))
        with multiprocessing.Pool(workers) as pool, partial.open("a") as log:
            for row in pool.imap_unordered(run_job, jobs):
                rows.append(row)
                log.write(json.dumps(asdict(row)) + "\n")
                log.flush()
                print(
                    f"{row.trace:15s} {row.fraction:4.0%} {row.policy:18s} ours={row.ours:8.4f} "
                    f"lcs={row.libcachesim:8.4f} diff={row.diff_pp:+.4f}pp ({row.seconds:.0f}s)",
                    flush=True,
                )
    print(write_outputs(rows, args.out, complete=True))
    partial.unlink()  # everything is in the .md/.json now
    return 0


if __name__ == "__main__":
    sys.exit(main())
