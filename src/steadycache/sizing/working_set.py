"""Working-set size over windows: how many distinct keys (and bytes) a period touches.

Denning's working set W(t, tau) is the set of objects referenced in the window
``[t, t + tau)``. A cache smaller than the working set of the period it must serve keeps
evicting objects it will need again within that period. Windows are measured in seconds
when the trace has timestamps, otherwise in requests.

Computed for all windows at once: a request ``j`` is counted in window ``k`` exactly when it
is the last access to its key inside that window, i.e. ``start_k <= t_j < start_k + tau``
and the key's next access is at or after ``start_k + tau``. For each request that holds
for one contiguous range of ``k``, so a difference array (two bincounts and a cumulative
sum) gives every window's count in O(N + windows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from steadycache.sizing.mrc import previous_access

if TYPE_CHECKING:
    from steadycache.sizing.readers import Trace

WindowUnit = Literal["seconds", "requests"]


@dataclass(frozen=True)
class WorkingSetSeries:
    """Distinct keys and bytes per window; windows start every ``step`` and last ``window``."""

    window: float
    step: float
    unit: WindowUnit
    starts: npt.NDArray[np.float64]
    keys: npt.NDArray[np.int64]
    bytes: npt.NDArray[np.int64]

    def summary(self) -> dict[str, float | str]:
        """Mean and peak per window, as reported by ``steadycache size``."""
        return {
            "window": self.window,
            "unit": self.unit,
            "windows": int(self.keys.shape[0]),
            "mean_keys": float(self.keys.mean()) if self.keys.shape[0] else 0.0,
            "max_keys": int(self.keys.max()) if self.keys.shape[0] else 0,
            "mean_bytes": float(self.bytes.mean()) if self.bytes.shape[0] else 0.0,
            "max_bytes": int(self.bytes.max()) if self.bytes.shape[0] else 0,
        }


def working_set(
    trace: Trace,
    window: float,
    step: float | None = None,
    *,
    positions: npt.NDArray[np.int64] | None = None,
) -> WorkingSetSeries:
    """Working set of every window of length ``window`` starting every ``step``.

    ``step`` defaults to ``window`` (tumbling windows); a smaller step gives sliding windows.
    Only whole windows are reported (one partial window when the trace is shorter).
    ``positions`` (a trace sampled while read, without timestamps) places each request at
    its position in the whole trace, so request windows keep their real length.
    """
    if window <= 0:
        raise ValueError(f"window must be positive, got {window!r}")
    step = window if step is None else step
    if step <= 0:
        raise ValueError(f"step must be positive, got {step!r}")
    unit: WindowUnit = "requests" if trace.times is None else "seconds"
    n = len(trace)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return WorkingSetSeries(window, step, unit, np.zeros(0), empty, empty)
    if trace.times is not None:
        times = trace.times.astype(np.float64)
    elif positions is not None:
        times = positions.astype(np.float64)
    else:
        times = np.arange(n, dtype=np.float64)
    origin = float(times[0])
    span = float(times[-1]) - origin
    windows = max(1, math.floor((span - window) / step) + 1) if span >= window else 1

    previous = previous_access(trace.keys)
    next_time = np.full(n, math.inf)
    reused = np.flatnonzero(previous >= 0)
    next_time[previous[reused]] = times[reused]

    relative = times - origin
    first = np.floor((relative - window) / step).astype(np.int64) + 1
    last_by_start = np.floor(relative / step).astype(np.int64)
    # A key re-accessed within the window is counted at its later access instead.
    with np.errstate(invalid="ignore"):
        last_by_next = np.floor((next_time - origin - window) / step)
    last = np.minimum(last_by_start, np.nan_to_num(last_by_next, posinf=windows).astype(np.int64))
    first = np.maximum(first, 0)
    last = np.minimum(last, windows - 1)
    counted = first <= last
    keys_per_window = _range_sums(first[counted], last[counted], None, windows)
    bytes_per_window = _range_sums(first[counted], last[counted], trace.sizes[counted], windows)
    starts = origin + step * np.arange(windows, dtype=np.float64)
    return WorkingSetSeries(window, step, unit, starts, keys_per_window, bytes_per_window)


def _range_sums(
    first: npt.NDArray[np.int64],
    last: npt.NDArray[np.int64],
    weights: npt.NDArray[np.int64] | None,
    length: int,
) -> npt.NDArray[np.int64]:
    """Add ``weights[i]`` to every slot in ``[first[i], last[i]]``: a difference array."""
    w = None if weights is None else weights.astype(np.float64)
    delta = np.bincount(first, weights=w, minlength=length + 1)
    delta -= np.bincount(last + 1, weights=w, minlength=length + 1)
    result: npt.NDArray[np.int64] = np.rint(np.cumsum(delta)[:length]).astype(np.int64)
    return result


def default_windows(trace: Trace, total_requests: int | None = None) -> list[float]:
    """The windows ``steadycache size`` reports: a minute and an hour, or request counts.

    ``total_requests`` is the length of the whole trace when ``trace`` is a sample of it.
    """
    if trace.times is not None:
        return [60.0, 3600.0]
    n = len(trace) if total_requests is None else total_requests
    candidates = [10_000.0, 100_000.0, 1_000_000.0]
    chosen = [w for w in candidates if w <= n]
    return chosen or [float(max(1, n))]
