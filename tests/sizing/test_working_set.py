"""Working-set windows against a direct count."""

from __future__ import annotations

import numpy as np
import pytest

from steadycache.sizing.readers import Trace
from steadycache.sizing.working_set import default_windows, working_set


def _direct(
    trace: Trace, window: float, step: float, starts: np.ndarray
) -> tuple[list[int], list[int]]:
    times = np.arange(len(trace), dtype=np.float64) if trace.times is None else trace.times
    keys_out: list[int] = []
    bytes_out: list[int] = []
    for start in starts.tolist():
        inside = (times >= start) & (times < start + window)
        last: dict[int, int] = {}
        for key, size in zip(
            trace.keys[inside].tolist(), trace.sizes[inside].tolist(), strict=True
        ):
            last[key] = size
        keys_out.append(len(last))
        bytes_out.append(sum(last.values()))
    return keys_out, bytes_out


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize(("window", "step"), [(10.0, 10.0), (25.0, 5.0), (7.0, 3.0)])
def test_windows_match_a_direct_count(seed: int, window: float, step: float) -> None:
    rng = np.random.default_rng(seed)
    n = 300
    with_times = seed % 2 == 0
    times = np.sort(rng.uniform(0, 200, size=n)) if with_times else None
    trace = Trace(
        "t",
        rng.integers(0, 40, size=n).astype(np.int64),
        rng.integers(1, 100, size=n).astype(np.int64),
        times,
    )
    series = working_set(trace, window, step)
    assert series.unit == ("seconds" if with_times else "requests")
    keys, byte_counts = _direct(trace, window, step, series.starts)
    assert series.keys.tolist() == keys
    assert series.bytes.tolist() == byte_counts
    summary = series.summary()
    assert summary["max_keys"] == max(keys)


def test_invalid_windows_are_refused() -> None:
    trace = Trace("t", np.zeros(3, dtype=np.int64), np.ones(3, dtype=np.int64), None)
    with pytest.raises(ValueError, match="window"):
        working_set(trace, 0)
    with pytest.raises(ValueError, match="step"):
        working_set(trace, 5, -1)


def test_default_windows_follow_timestamps() -> None:
    timed = Trace("t", np.zeros(3, dtype=np.int64), np.ones(3, dtype=np.int64), np.arange(3.0))
    untimed = Trace("u", np.zeros(50_000, dtype=np.int64), np.ones(50_000, dtype=np.int64), None)
    assert default_windows(timed) == [60.0, 3600.0]
    assert default_windows(untimed) == [10_000.0]
