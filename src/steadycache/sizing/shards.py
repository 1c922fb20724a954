"""SHARDS: approximate miss-ratio curves from a spatially hashed sample of the keys.

Waldspurger, Park, Garthwaite and Ahmad, "Efficient MRC Construction with SHARDS", USENIX
FAST 2015. A key is sampled when ``hash(key) mod P < T``, so every access to a sampled key
is kept (the sample is of keys, not of requests: reuse is preserved). The sampled trace is
a miniature of the real one at rate ``R = T / P``: its stack distances, divided by ``R``,
estimate the real ones, and each sampled request stands for ``1 / R`` real ones.

- Fixed rate: ``T`` is constant; the work and memory fall with ``R``.
- Fixed size: at most ``max_keys`` distinct keys are tracked. When one more arrives, the key
  with the largest hash leaves and ``T`` drops to its hash, so the rate adapts to the trace.
  Requests seen at a higher rate weigh less (weight ``1 / R(t)``), which is the paper's
  rescaling of the histogram when ``T`` is lowered.
- SHARDS_adj (Waldspurger et al., USENIX ATC 2017): the sampled request count rarely equals
  its expectation ``N * R``; the difference, counted as hits at the smallest size, removes
  most of the resulting bias. Applied to both variants.

The hash is splitmix64's finaliser over the 64-bit key: block traces number keys
consecutively, so the raw key modulo P would be anything but a uniform sample.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from steadycache.sizing.mrc import MissRatioCurve, Unit, curve_from_distances, stack_distances

if TYPE_CHECKING:
    from steadycache.sizing.readers import Trace

UIntArray = npt.NDArray[np.uint64]
HASH_SPACE = 2**64


def key_hashes(keys: npt.NDArray[np.int64]) -> UIntArray:
    """splitmix64 of each key: a fast, stable, well-mixed 64-bit hash (vectorised)."""
    # uint64 array arithmetic wraps modulo 2**64, which is exactly what splitmix64 wants.
    # In place: one temporary at a time, so hashing a chunk costs two arrays, not six.
    z: UIntArray = keys.view(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def sampled_mask(keys: npt.NDArray[np.int64], rate: float) -> npt.NDArray[np.bool_]:
    """Which requests a fixed-rate SHARDS sample keeps."""
    check_rate(rate)
    if rate >= 1.0:
        return np.ones(keys.shape[0], dtype=bool)
    threshold = np.uint64(int(rate * HASH_SPACE))
    mask: npt.NDArray[np.bool_] = key_hashes(keys) < threshold
    return mask


def fixed_rate_curve(
    trace: Trace, rate: float, unit: Unit = "objects", *, adjust: bool = True
) -> MissRatioCurve:
    """SHARDS at a fixed sampling rate (``0 < rate <= 1``)."""
    mask = sampled_mask(trace.keys, rate)
    return _curve_from_sample(
        trace.keys[mask],
        trace.sizes[mask],
        np.full(int(mask.sum()), rate),
        total=float(len(trace)),
        unit=unit,
        adjust=adjust,
        sample_rate=rate,
    )


def presampled_curve(
    trace: Trace, rate: float, unit: Unit = "objects", *, total_requests: int | None = None
) -> MissRatioCurve:
    """The curve of a trace that was already sampled at ``rate`` (a captured ``.sctrace``).

    With ``total_requests`` (the requests seen while capturing) SHARDS_adj applies.
    """
    check_rate(rate)
    total = float(total_requests) if total_requests else len(trace) / rate
    return _curve_from_sample(
        trace.keys,
        trace.sizes,
        np.full(len(trace), rate),
        total=total,
        unit=unit,
        adjust=total_requests is not None,
        sample_rate=rate,
    )


def fixed_size_curve(
    trace: Trace,
    max_keys: int,
    unit: Unit = "objects",
    *,
    initial_rate: float = 1.0,
    adjust: bool = True,
) -> MissRatioCurve:
    """SHARDS with at most ``max_keys`` tracked keys (bounded memory on any trace)."""
    if max_keys < 1:
        raise ValueError(f"max_keys must be at least 1, got {max_keys!r}")
    check_rate(initial_rate)
    keys = trace.keys
    n = len(trace)
    if n == 0:
        return _curve_from_sample(
            keys, trace.sizes, np.ones(0), total=0.0, unit=unit, adjust=False, sample_rate=1.0
        )
    _, first_index, key_id = np.unique(keys, return_index=True, return_inverse=True)
    hashes = key_hashes(keys[first_index])
    tracked, evicted_at, change_times, change_thresholds = _track_smallest_hashes(
        hashes, first_index, max_keys, min(HASH_SPACE, int(initial_rate * HASH_SPACE))
    )
    request_evicted_at = evicted_at[key_id]
    positions = np.arange(n, dtype=np.int64)
    mask = tracked[key_id] & ((request_evicted_at < 0) | (positions < request_evicted_at))
    kept = np.flatnonzero(mask)
    # The threshold in force at each kept request (it changes after the evicting insert).
    step = np.searchsorted(change_times, kept, side="right") - 1
    rates = change_thresholds[step] / HASH_SPACE
    # Where an evicted key leaves the tracked set, in sampled-trace positions.
    kept_evicted_at = request_evicted_at[kept]
    removals = np.where(
        kept_evicted_at >= 0, np.searchsorted(kept, kept_evicted_at, side="left"), -1
    ).astype(np.int64)
    final_rate = float(change_thresholds[-1]) / HASH_SPACE
    return _curve_from_sample(
        keys[kept],
        trace.sizes[kept],
        rates,
        total=float(n),
        unit=unit,
        adjust=adjust,
        sample_rate=final_rate,
        removals=removals,
    )


def _track_smallest_hashes(
    hashes: UIntArray, first_index: npt.NDArray[np.int64], max_keys: int, threshold: int
) -> tuple[
    npt.NDArray[np.bool_], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]
]:
    """Replay first accesses in order, keeping the ``max_keys`` smallest hashes below T.

    Returns which keys were ever tracked, when each was evicted (-1 if never), and the
    threshold's history (times and values). Only keys below the current threshold can
    matter, so each chunk is pre-filtered with numpy and only candidates reach Python.
    """
    keys_count = hashes.shape[0]
    tracked = np.zeros(keys_count, dtype=bool)
    evicted_at = np.full(keys_count, -1, dtype=np.int64)
    times: list[int] = [0]
    thresholds: list[float] = [float(threshold)]
    heap: list[tuple[int, int]] = []
    by_arrival = np.argsort(first_index, kind="stable")
    chunk = 65536
    for start in range(0, keys_count, chunk):
        ids = by_arrival[start : start + chunk]
        if threshold < HASH_SPACE:
            ids = ids[hashes[ids] < np.uint64(threshold)]
        for key, value, arrival in zip(
            ids.tolist(), hashes[ids].tolist(), first_index[ids].tolist(), strict=True
        ):
            if value >= threshold:
                continue
            tracked[key] = True
            heapq.heappush(heap, (-value, key))
            if len(heap) > max_keys:
                negated, victim = heapq.heappop(heap)
                threshold = -negated
                evicted_at[victim] = arrival
                times.append(arrival)
                thresholds.append(float(threshold))
    return (
        tracked,
        evicted_at,
        np.array(times, dtype=np.int64),
        np.array(thresholds, dtype=np.float64),
    )


def _curve_from_sample(
    keys: npt.NDArray[np.int64],
    sizes: npt.NDArray[np.int64],
    rates: npt.NDArray[np.float64],
    *,
    total: float,
    unit: Unit,
    adjust: bool,
    sample_rate: float,
    removals: npt.NDArray[np.int64] | None = None,
) -> MissRatioCurve:
    distances = stack_distances(keys, sizes if unit == "bytes" else None, removals=removals)
    chosen = distances.objects if unit == "objects" else distances.bytes
    assert chosen is not None  # bytes are computed whenever unit == "bytes"
    weights = 1.0 / rates if rates.shape[0] else np.zeros(0)
    correction = total - float(weights.sum()) if adjust else 0.0
    exact = sample_rate >= 1.0 and correction == 0.0
    return curve_from_distances(
        chosen,
        unit=unit,
        total=total,
        scale=weights,
        weights=weights,
        adjust=correction,
        exact=exact,
        sample_rate=sample_rate,
    )


def check_rate(rate: float) -> None:
    """``ValueError`` unless ``0 < rate <= 1``."""
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"sampling rate must be in (0, 1], got {rate!r}")
