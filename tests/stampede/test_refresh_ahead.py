"""The refresh-ahead schedule, without a namespace: no I/O, so no async twin.

Refresh-ahead through both facades (a worker thread, an asyncio task) is tested in
tests/_async/test_stampede_refresh.py and its generated twin in tests/_sync.
"""

from __future__ import annotations

from steadycache.policy import RefreshAhead
from steadycache.stampede.refresh_ahead import RefreshSchedule


def test_schedule_due_at_fraction_of_lifetime_and_forgets_cold_keys() -> None:
    schedule = RefreshSchedule(RefreshAhead(at=0.75, hot_window=100), default_ttl=60, max_keys=10)
    schedule.read("hot", lambda: 1, None, (), now=0.0)
    schedule.read("cold", lambda: 1, None, (), now=0.0)
    schedule.loaded("hot", stored_at=0.0, fresh_until=60.0)
    schedule.loaded("cold", stored_at=0.0, fresh_until=60.0)
    assert schedule.due(44.0) == []
    schedule.read("hot", lambda: 2, None, (), now=44.0)
    assert [key for key, _ in schedule.due(45.0)] == ["hot", "cold"]
    assert schedule.due(46.0) == []  # not again until the reload lands
    schedule.loaded("hot", stored_at=46.0, fresh_until=106.0)
    schedule.read("hot", lambda: 2, None, (), now=140.0)
    due = schedule.due(151.0)  # cold was last read at 0: forgotten after 100 s
    assert [key for key, _ in due] == ["hot"]
    assert len(schedule) == 1


def test_schedule_is_bounded() -> None:
    schedule = RefreshSchedule(RefreshAhead(), default_ttl=60, max_keys=3)
    for i in range(10):
        schedule.read(f"k{i}", lambda: 1, None, (), now=0.0)
    assert len(schedule) == 3
