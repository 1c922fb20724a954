from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from steadycache import Cache, Policy, ReadThrough, Stampede, UsageError
from steadycache.policy import HotKeyWarmUp, OriginLimit
from steadycache.stampede.hot_keys import HotKeyTracker, read_snapshot, write_snapshot
from steadycache.stampede.readiness import Readiness


def test_space_saving_finds_the_heavy_hitters() -> None:
    tracker = HotKeyTracker(capacity=10)
    for i in range(5_000):
        tracker.touch(f"hot{i % 3}", f"hot{i % 3}", None)  # 3 hot keys, 1/3 of traffic each
        tracker.touch(f"cold{i}", f"cold{i}", None)  # 5000 keys seen once
    top = tracker.top(3)
    assert {key for key, _, _ in top} == {"hot0", "hot1", "hot2"}
    assert len(tracker.top()) == 10  # bounded


def test_snapshot_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "hot.json"
    write_snapshot(path, "ns", [(("w", 1), None, 9), ("plain", {"tenant": 1}, 3)])
    assert read_snapshot(path, "ns") == [(("w", 1), None), ("plain", {"tenant": 1})]
    assert read_snapshot(path, "other") == []
    assert read_snapshot(tmp_path / "none.json", "ns") == []


def test_readiness_waits_for_target() -> None:
    readiness = Readiness()
    assert readiness.is_ready
    readiness.expect(2)
    assert not readiness.wait(0.01)
    readiness.progress(2)
    readiness.done()
    assert readiness.wait(0)


def test_hot_keys_snapshot_at_close_then_warm_on_next_start(tmp_path: Path) -> None:
    path = str(tmp_path / "hot.json")
    policy = Policy(pattern=ReadThrough(), warm_up=HotKeyWarmUp(top_k=5, snapshot_path=path))
    with Cache() as first:
        ns = first.namespace("seats", policy)
        for i in range(100):
            ns.get_or_load(("w", i % 4), lambda: 0)  # 4 hot keys
        ns.get_or_load(("w", 99), lambda: 99)
    assert Path(path).exists()

    loaded: list[object] = []
    with Cache() as second:
        ns = second.namespace("seats", policy)

        def loader_for(key: object, scope: object) -> object:
            def load() -> object:
                loaded.append(key)
                return key[1]  # type: ignore[index]

            return load

        report = ns.warm(loader_for=loader_for)  # type: ignore[arg-type]
        assert second.readiness.wait(1)
        assert report.loaded == 5
        assert {("w", i) for i in range(4)} <= set(loaded)
        before = ns.stats().loads
        assert ns.get_or_load(("w", 2), lambda: -1) == 2  # warm: a hit, no load
        assert ns.stats().loads == before


def test_warm_is_bounded_by_concurrency_and_origin_limit() -> None:
    running = peak = 0
    lock = threading.Lock()

    def load() -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.01)
        with lock:
            running -= 1
        return 1

    with Cache() as cache:
        ns = cache.namespace(
            "w", Policy(stampede=Stampede(origin_limit=OriginLimit(max_concurrent=2)))
        )
        report = ns.warm([(f"k{i}", load) for i in range(20)], concurrency=8)
        assert report.loaded == 20
        assert peak <= 2
        assert ns.stats().warmed == 20


def test_warm_rate_limit_spaces_loads() -> None:
    with Cache() as cache:
        ns = cache.namespace("w")
        started = time.monotonic()
        report = ns.warm([(f"k{i}", lambda: 1) for i in range(5)], rate=50)
        assert time.monotonic() - started >= 4 / 50
        assert report.loaded == 5


def test_warm_deadline_marks_ready_anyway() -> None:
    with Cache() as cache:
        ns = cache.namespace("w")
        report = ns.warm(
            [(f"k{i}", lambda: time.sleep(0.05)) for i in range(10)], concurrency=1, deadline=0.08
        )
        assert report.loaded < 10
        assert report.deadline_reached
        assert cache.readiness.is_ready


def test_hot_keys_need_the_decision() -> None:
    with Cache() as cache, pytest.raises(UsageError, match="HotKeyWarmUp"):
        cache.namespace("x").hot_keys()
