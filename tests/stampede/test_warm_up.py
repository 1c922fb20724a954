"""The hot-key tracker and the snapshot file, without a namespace: no facade, so no twin.

Warm-up and readiness through both facades are tested in
tests/_async/test_stampede_warm_up.py and its generated twin in tests/_sync.
"""

from __future__ import annotations

from pathlib import Path

from steadycache.stampede.hot_keys import HotKeyTracker, read_snapshot, write_snapshot


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
