"""The hot-key tracker and the snapshot file, without a namespace: no facade, so no twin.

Warm-up and readiness through both facades are tested in
tests/_async/test_stampede_warm_up.py and its generated twin in tests/_sync.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from steadycache._core.keys import KeyBuilder
from steadycache.stampede.hot_keys import (
    HotKeyTracker,
    decode_snapshot,
    encode_snapshot,
    read_snapshot,
    write_snapshot,
)


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


def test_float_and_date_keys_come_back_as_the_same_stored_key() -> None:
    keys: list[object] = [
        1.5,
        float("inf"),
        ("fx", -0.0),
        date(2026, 5, 1),
        datetime(2026, 5, 1, 10, 30, 0, 7),
        (datetime(2026, 5, 1, 10, tzinfo=UTC), 2),
    ]
    try:
        paris = ZoneInfo("Europe/Paris")
    except ZoneInfoNotFoundError:
        pass  # no time zone database here: the other keys still make the point
    else:
        keys.append(datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=paris))  # the repeated hour
    builder = KeyBuilder("ns", max_length=1024)
    restored = decode_snapshot(encode_snapshot("ns", [(key, None, 1) for key in keys]), "ns")
    assert [builder.build(key) for key, _ in restored] == [builder.build(key) for key in keys]
