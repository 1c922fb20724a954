"""Helpers shared by the sizing tests: traces as libCacheSim reads them."""

from __future__ import annotations

from pathlib import Path

import libcachesim as lcs  # a missing reference simulator must fail the suite, not skip it
import numpy as np

from steadycache.sizing.readers import Trace
from tests.traces import TRACE_SLICES


def libcachesim_lru_miss_ratios(trace: Trace, sizes: list[int], tmp_path: Path) -> list[float]:
    """libCacheSim's LRU miss ratio at each size, the cache counted in objects."""
    records = np.zeros(
        len(trace),
        dtype=[("time", "<u4"), ("obj_id", "<u8"), ("obj_size", "<u4"), ("next", "<i8")],
    )
    records["obj_id"] = trace.keys.view(np.uint64)
    records["obj_size"] = 1
    records["next"] = -1
    path = tmp_path / "trace.oracleGeneral"
    records.tofile(path)
    reader = lcs.TraceReader(
        str(path), lcs.TraceType.ORACLE_GENERAL_TRACE, lcs.ReaderInitParam(ignore_obj_size=True)
    )
    # hashpower sized to the slice: the default (2**24 slots) costs more than the run.
    return [float(lcs.LRU(size, hashpower=16).process_trace(reader)[0]) for size in sizes]


def zipf_trace(requests: int, keys: int, alpha: float, seed: int) -> Trace:
    """A synthetic trace with Zipf popularity over ``keys`` keys (independent requests)."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, keys + 1, dtype=np.float64)
    weights = ranks**-alpha
    chosen = rng.choice(keys, size=requests, p=weights / weights.sum())
    # Scatter the ids so popularity is unrelated to the key's numeric value.
    ids = rng.permutation(keys * 7)[:keys].astype(np.int64)
    return Trace(
        name="zipf",
        keys=ids[chosen],
        sizes=rng.integers(1, 5000, size=keys)[chosen].astype(np.int64),
        times=None,
    )


def slice_of(name: str, requests: int) -> Trace:
    from steadycache.sizing.readers import load_trace

    return load_trace(TRACE_SLICES / name, limit=requests)
