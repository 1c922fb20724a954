"""Exact LRU stack distances and curves: brute force and libCacheSim agree with one pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from steadycache.sizing.mrc import COLD, exact_curve, stack_distances
from steadycache.sizing.readers import Trace
from tests.sizing._lcs import libcachesim_lru_miss_ratios, slice_of, zipf_trace


def _brute_force(keys: list[int], sizes: list[int]) -> tuple[list[int], list[int]]:
    """Smallest hitting LRU size per request, by moving keys in an explicit stack."""
    stack: list[int] = []
    last_size: dict[int, int] = {}
    objects: list[int] = []
    byte_sizes: list[int] = []
    for key, size in zip(keys, sizes, strict=True):
        if key in stack:
            depth = stack.index(key)
            objects.append(depth + 1)
            byte_sizes.append(sum(last_size[k] for k in stack[:depth]) + size)
            stack.pop(depth)
        else:
            objects.append(COLD)
            byte_sizes.append(COLD)
        last_size[key] = size
        stack.insert(0, key)
    return objects, byte_sizes


@pytest.mark.parametrize("seed", range(25))
def test_stack_distances_match_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 400))
    keys = rng.integers(0, int(rng.integers(1, 60)), size=n).astype(np.int64)
    sizes = rng.integers(1, 1000, size=n).astype(np.int64)
    distances = stack_distances(keys, sizes)
    objects, byte_sizes = _brute_force(keys.tolist(), sizes.tolist())
    assert distances.objects.tolist() == objects
    assert distances.bytes is not None
    assert distances.bytes.tolist() == byte_sizes


def test_uniform_sizes_take_the_shortcut_and_agree() -> None:
    keys = np.array([1, 2, 3, 1, 2, 3, 3, 1], dtype=np.int64)
    distances = stack_distances(keys, np.full(keys.shape[0], 512, dtype=np.int64))
    assert distances.bytes is not None
    assert distances.bytes.tolist() == [-1, -1, -1, 1536, 1536, 1536, 512, 1536]


def test_curve_counts_cold_misses_and_finds_sizes() -> None:
    trace = Trace(
        "t", np.array([1, 2, 1, 2, 3, 1], dtype=np.int64), np.ones(6, dtype=np.int64), None
    )
    curve = exact_curve(trace)
    # Hits need size 2 (1, 2 re-accessed at depth 2) and 3 (1 after 2, 3).
    assert curve.miss_ratios([1, 2, 3, 10]).tolist() == pytest.approx([1.0, 4 / 6, 3 / 6, 3 / 6])
    assert curve.floor == pytest.approx(0.5)
    assert curve.smallest_size_for(4 / 6) == 2
    assert curve.smallest_size_for(0.5) == 3
    assert curve.smallest_size_for(0.4) is None
    assert curve.exact


def test_empty_trace_gives_an_empty_curve() -> None:
    empty = np.zeros(0, dtype=np.int64)
    curve = exact_curve(Trace("empty", empty, empty, None))
    assert curve.miss_ratio(10) == 0.0


@pytest.mark.parametrize(
    ("name", "requests"), [("P3-head.lis.zst", 200_000), ("cloudPhysicsIO.csv.zst", 60_000)]
)
def test_exact_curve_is_identical_to_libcachesim_lru(
    name: str, requests: int, tmp_path: Path
) -> None:
    trace = slice_of(name, requests)
    unique = trace.unique_keys()
    sizes = sorted({int(s) for s in np.geomspace(2, unique, 10)})
    assert len(sizes) == 10
    ours = exact_curve(trace).miss_ratios(sizes)
    reference = libcachesim_lru_miss_ratios(trace, sizes, tmp_path)
    # Identical: the same number of requests miss at every size.
    assert np.rint(ours * len(trace)).tolist() == np.rint(np.array(reference) * len(trace)).tolist()


def test_exact_curve_matches_libcachesim_on_zipf(tmp_path: Path) -> None:
    trace = zipf_trace(50_000, 5_000, 0.9, seed=3)
    sizes = [1, 10, 50, 100, 250, 500, 1000, 2000, 3500, 5000]
    ours = exact_curve(trace).miss_ratios(sizes)
    reference = libcachesim_lru_miss_ratios(trace, sizes, tmp_path)
    assert ours.tolist() == pytest.approx(reference, abs=1e-12)
