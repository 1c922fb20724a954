"""Overhead of TraceRecorder.record per call, for keys outside and inside the sample.

One run, ``python benchmarks/trace_capture_overhead.py``. The baseline is a no-op method
with the same signature, so the figures are what recording adds to a cache read.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from steadycache.sizing.capture import TraceRecorder, sampling_hash

CALLS = 1_000_000
BATCH = 100_000


class _NoOp:
    def record(self, namespace: str, key: str, value_size: int, hit: bool) -> None:
        return None


def _per_call_ns(record: object, keys: list[str]) -> float:
    """Best of several batches: the machine is shared, the minimum is the honest cost."""
    method = record.record  # type: ignore[attr-defined]
    best = float("inf")
    for start_index in range(0, len(keys), BATCH):
        batch = keys[start_index : start_index + BATCH]
        start = time.perf_counter()
        for key in batch:
            method("users", key, 512, True)
        best = min(best, (time.perf_counter() - start) / len(batch) * 1e9)
    return best


def main() -> None:
    keys = [f"user:{i}" for i in range(CALLS)]
    threshold = int(0.01 * 2**32)
    unsampled = [k for k in keys if sampling_hash("users", k) >= threshold]
    sampled = [k for k in keys if sampling_hash("users", k) < threshold]
    # Repeat the sampled keys so both measurements make a similar number of calls.
    sampled_calls = (sampled * (len(unsampled) // max(1, len(sampled)) + 1))[: len(unsampled)]
    with tempfile.TemporaryDirectory() as tmp:
        baseline = _per_call_ns(_NoOp(), unsampled)
        with TraceRecorder(Path(tmp) / "a.sctrace", sample_rate=0.01) as recorder:
            miss_path = _per_call_ns(recorder, unsampled)
            hit_path = _per_call_ns(recorder, sampled_calls)
        with TraceRecorder(Path(tmp) / "b.sctrace", sample_rate=0.01) as recorder:
            mixed = _per_call_ns(recorder, keys)
        size = (Path(tmp) / "b.sctrace").stat().st_size
    print(f"calls per measurement: {len(unsampled):,}")
    print(f"no-op method call (baseline):        {baseline:7.0f} ns")
    print(
        f"record(), key not sampled:           {miss_path:7.0f} ns"
        f"  (+{miss_path - baseline:.0f} ns)"
    )
    print(
        f"record(), key sampled (written):     {hit_path:7.0f} ns  (+{hit_path - baseline:.0f} ns)"
    )
    print(f"record(), 1% sample, all keys once:  {mixed:7.0f} ns  (+{mixed - baseline:.0f} ns)")
    print(f"file size for {CALLS:,} reads at 1%: {size:,} bytes")


if __name__ == "__main__":
    main()
