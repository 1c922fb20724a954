"""Exact LRU miss-ratio curves in one pass over a trace (Mattson stack distances).

LRU has the inclusion property: a request hits in an LRU cache of capacity C exactly when
the distinct objects touched since the key's previous access, plus the key itself, fit in
C. So one pass that measures that "stack distance" for every request yields the miss ratio
at every size at once (Mattson et al., 1970), where a simulator needs one run per size.

How the distance is computed, without a per-request Python loop. For request ``i`` whose
key was last accessed at ``p``, the distance is the number of ``j`` in ``(p, i)`` whose
key is not accessed again before ``i``: ``#{p < j < i : next_j > i}``. Writing
``y_j`` for the (encoded) time of ``j``'s next event, that is

    #{j < i : y_j > y_p}  -  #{j < p : y_j > y_p}

The first term is a prefix count (a cumulative sum over ``y``); the second is, for every
position ``p``, the number of earlier positions with a larger value: the per-element
inversion count of ``y``. That is computed top-down over the bits of ``y`` like a wavelet
tree: at each bit, within groups sharing the higher bits, an element with bit 0 gains the
number of earlier bit-1 elements, then every group is stably split by the bit. Each level
is a handful of vectorised numpy passes, so the whole is O(N log N) with a small constant
(P12's 13.2M requests in well under the time libCacheSim needs for a few LRU sizes).
The same pass, with object sizes as weights, gives byte-level distances.

A byte-sized LRU is modelled as "hit when the bytes of the objects above it plus its own
size fit"; that matches a simulator exactly as long as no object is larger than the cache
(such objects are never admitted by libCacheSim, which a stack model cannot express).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from steadycache.sizing.readers import Trace

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
Unit = Literal["objects", "bytes"]
IndexArray = npt.NDArray[np.signedinteger[Any]]
_ArrayT = TypeVar("_ArrayT", bound=npt.NDArray[Any])

#: Marks a cold (first-ever) request in a distance array: it misses at every size.
COLD = -1


@dataclass(frozen=True)
class MissRatioCurve:
    """A miss-ratio curve: for each cache size, the share of requests that miss.

    Stored as the sorted distinct "smallest hitting sizes" of the sampled requests with
    their cumulative weights, so evaluating any size is one binary search. ``total`` is the
    number of real requests represented; ``adjust`` is SHARDS_adj's correction, counted as
    hits at every size (zero for exact curves).
    """

    unit: Unit
    thresholds: FloatArray
    cumulative_hits: FloatArray
    total: float
    exact: bool
    sample_rate: float
    adjust: float = 0.0

    def miss_ratios(self, sizes: npt.ArrayLike) -> FloatArray:
        """Miss ratio at each size (in ``unit``)."""
        query = np.asarray(sizes, dtype=np.float64)
        index = np.searchsorted(self.thresholds, query, side="right")
        padded = np.concatenate(([0.0], self.cumulative_hits))
        hits = padded[index] + np.where(query > 0, self.adjust, 0.0)
        if self.total <= 0:
            return np.zeros(query.shape, dtype=np.float64)
        result: FloatArray = np.clip(1.0 - hits / self.total, 0.0, 1.0)
        return result

    def miss_ratio(self, size: float) -> float:
        """Miss ratio at one size."""
        return float(self.miss_ratios([size])[0])

    @property
    def floor(self) -> float:
        """The lowest miss ratio any size reaches: the cold (compulsory) misses."""
        return self.miss_ratio(math.inf)

    @property
    def max_useful_size(self) -> float:
        """Beyond this size the miss ratio no longer falls."""
        return float(self.thresholds[-1]) if self.thresholds.shape[0] else 0.0

    def smallest_size_for(self, miss_ratio: float) -> int | None:
        """The smallest whole size whose miss ratio is at most ``miss_ratio``; None if none."""
        if self.total <= 0:
            return 0
        needed_hits = (1.0 - miss_ratio) * self.total - self.adjust
        # A tiny tolerance so a target equal to a curve point is met despite float rounding.
        index = int(np.searchsorted(self.cumulative_hits, needed_hits - 1e-9, side="left"))
        if needed_hits <= 1e-9:
            return 1
        if index >= self.cumulative_hits.shape[0]:
            return None
        return max(1, math.ceil(float(self.thresholds[index]) - 1e-9))

    def default_sizes(self, points: int = 40) -> list[int]:
        """Log-spaced sizes from 1 to where the curve flattens, for reports and plots."""
        top = max(2.0, self.max_useful_size)
        grid = np.unique(np.round(np.geomspace(1.0, top, points)).astype(np.int64))
        return [int(s) for s in grid]


@dataclass(frozen=True)
class StackDistances:
    """Per request, the smallest LRU size that hits (``COLD`` for first accesses)."""

    objects: IntArray
    bytes: IntArray | None


def previous_access(keys: IntArray) -> IntArray:
    """Index of each request's previous request for the same key, -1 for a first access."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    same = sorted_keys[1:] == sorted_keys[:-1]
    previous = np.full(keys.shape[0], -1, dtype=np.int64)
    previous[order[1:][same]] = order[:-1][same]
    return previous


def stack_distances(
    keys: IntArray,
    sizes: IntArray | None = None,
    *,
    removals: IntArray | None = None,
) -> StackDistances:
    """Smallest hitting LRU size per request, in objects (and in bytes when sizes given).

    ``removals`` (used by fixed-size SHARDS) gives, per request, the index at which its key
    leaves the tracked set if this is its last tracked access (-1 otherwise): from then on
    the key no longer counts towards other keys' distances.
    """
    n = int(keys.shape[0])
    objects = np.full(n, COLD, dtype=np.int64)
    byte_sizes = None if sizes is None else np.full(n, COLD, dtype=np.int64)
    if n == 0:
        return StackDistances(objects, byte_sizes)
    previous = previous_access(keys)
    reused = np.flatnonzero(previous >= 0)
    # Encode every request's next event as a distinct value: 2*next for a re-access,
    # 2*t-1 for a removal at t (just before request t), 2n+j when nothing follows.
    encoded = 2 * n + np.arange(n, dtype=np.int64)
    if removals is not None:
        removed = removals >= 0
        encoded[removed] = 2 * removals[removed] - 1
    encoded[previous[reused]] = 2 * reused
    weights = None if sizes is None else sizes.astype(np.int64)
    uniform_size = None
    if weights is not None and bool((weights == weights[0]).all()):
        # Equal-sized objects (block traces): bytes are objects times the size, no second sum.
        uniform_size, weights = int(weights[0]), None
    count_inv, weight_inv = _earlier_greater_by_value(encoded, 3 * n, weights)

    # Prefix term: #{j < i : y_j > 2i} = i - #{j : y_j <= 2i} (every y_j <= 2i has j < i).
    at_or_below = np.zeros(3 * n, dtype=np.int64)
    at_or_below[encoded] = 1
    np.cumsum(at_or_below, out=at_or_below)
    threshold = 2 * reused
    above = reused - at_or_below[threshold]
    objects[reused] = above - count_inv[threshold] + 1
    if uniform_size is not None and byte_sizes is not None:
        byte_sizes[reused] = objects[reused] * uniform_size
    if weights is not None and byte_sizes is not None and weight_inv is not None:
        weight_below = np.zeros(3 * n, dtype=np.int64)
        weight_below[encoded] = weights
        np.cumsum(weight_below, out=weight_below)
        prefix_weight = np.concatenate(([0], np.cumsum(weights)))
        bytes_above = prefix_weight[reused] - weight_below[threshold] - weight_inv[threshold]
        byte_sizes[reused] = bytes_above + weights[reused]
    return StackDistances(objects, byte_sizes)


def _earlier_greater_by_value(
    values: IntArray, bound: int, weights: IntArray | None
) -> tuple[IntArray, IntArray | None]:
    """For each position p: #{j < p : values[j] > values[p]} (and the sum of their weights).

    ``values`` are distinct and in ``[0, bound)``. Results are indexed by value (an array of
    length ``bound``), which is how callers look them up.
    """
    n = int(values.shape[0])
    # int32 halves the memory traffic of every pass when the trace allows it.
    dtype: type[np.signedinteger[Any]] = np.int32 if bound < 2**31 - 1 else np.int64
    current: IndexArray = values.astype(dtype)
    counts_inv: IndexArray = np.zeros(n, dtype=dtype)
    current_weights = None if weights is None else weights.copy()
    weights_inv = None if weights is None else np.zeros(n, dtype=np.int64)
    position: IndexArray = np.arange(n, dtype=dtype)
    group_start: IndexArray = np.zeros(n, dtype=dtype)
    for bit in range(max(1, int(bound - 1).bit_length()) - 1, -1, -1):
        is_one: IndexArray = (current >> bit) & 1
        ones_before: IndexArray = np.cumsum(is_one, dtype=dtype)
        ones_before -= is_one
        ones_before -= ones_before[group_start]
        is_zero = is_one == 0
        counts_inv += np.where(is_zero, ones_before, 0).astype(dtype)
        if current_weights is not None and weights_inv is not None:
            one_weights = is_one * current_weights
            weight_before = np.cumsum(one_weights)
            weight_before -= one_weights
            weight_before -= weight_before[group_start]
            weights_inv += np.where(is_zero, weight_before, 0)
        new_group: IndexArray = current >> bit
        group_sizes = np.bincount(new_group)
        starts: IndexArray = np.zeros(group_sizes.shape[0] + 1, dtype=dtype)
        np.cumsum(group_sizes, out=starts[1:])
        rank: IndexArray = np.where(is_zero, position - group_start - ones_before, ones_before)
        target: IndexArray = starts[new_group] + rank
        current = _scatter(current, target)
        counts_inv = _scatter(counts_inv, target)
        if current_weights is not None and weights_inv is not None:
            current_weights = _scatter(current_weights, target)
            weights_inv = _scatter(weights_inv, target)
        group_start = np.repeat(starts[:-1], group_sizes)
    # `current` is now sorted by value; index the results by value.
    by_value = np.zeros(bound, dtype=np.int64)
    by_value[current] = counts_inv
    weight_by_value = None
    if weights_inv is not None:
        weight_by_value = np.zeros(bound, dtype=np.int64)
        weight_by_value[current] = weights_inv
    return by_value, weight_by_value


def _scatter(array: _ArrayT, target: npt.NDArray[np.signedinteger[Any]]) -> _ArrayT:
    """Permute: element k moves to ``target[k]`` (a stable split needs a scatter, not a gather)."""
    out: _ArrayT = np.empty_like(array)
    out[target] = array
    return out


def curve_from_distances(
    distances: IntArray,
    *,
    unit: Unit,
    total: float | None = None,
    scale: FloatArray | float = 1.0,
    weights: FloatArray | None = None,
    adjust: float = 0.0,
    exact: bool = True,
    sample_rate: float = 1.0,
) -> MissRatioCurve:
    """Build a curve from smallest-hitting sizes; ``scale`` multiplies sampled distances."""
    hit = distances != COLD
    sizes = distances[hit].astype(np.float64)
    if not isinstance(scale, float):
        sizes = sizes * scale[hit]
    elif scale != 1.0:
        sizes = sizes * scale
    hit_weights = None if weights is None else weights[hit]
    order = np.argsort(sizes, kind="stable")
    sizes = sizes[order]
    step = np.ones(sizes.shape[0]) if hit_weights is None else hit_weights[order]
    cumulative = np.cumsum(step)
    # Keep one point per distinct size (the last cumulative value of each run).
    last_of_run = np.ones(sizes.shape[0], dtype=bool)
    last_of_run[:-1] = sizes[1:] != sizes[:-1]
    if total is None:
        total = float(distances.shape[0]) if weights is None else float(weights.sum())
    return MissRatioCurve(
        unit=unit,
        thresholds=sizes[last_of_run],
        cumulative_hits=cumulative[last_of_run],
        total=total,
        exact=exact,
        sample_rate=sample_rate,
        adjust=adjust,
    )


def exact_curve(trace: Trace, unit: Unit = "objects") -> MissRatioCurve:
    """The exact LRU miss-ratio curve of a whole trace, in objects or bytes."""
    distances = stack_distances(trace.keys, trace.sizes if unit == "bytes" else None)
    chosen = distances.objects if unit == "objects" else distances.bytes
    assert chosen is not None  # bytes are computed whenever unit == "bytes"
    return curve_from_distances(chosen, unit=unit)
