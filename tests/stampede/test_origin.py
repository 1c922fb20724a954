"""The circuit breaker's state machine, without a namespace: no I/O, so no async twin.

The origin limiter through both facades is tested in tests/_async/test_stampede_origin.py
and its generated twin tests/_sync/test_stampede_origin.py.
"""

from __future__ import annotations

from steadycache._core.breaker import CircuitBreaker
from tests.conftest import ManualClock


def test_breaker_allows_one_trial_at_a_time(clock: ManualClock) -> None:
    breaker = CircuitBreaker(threshold=1, reset=10, clock=clock)
    breaker.record(failed=True)
    assert not breaker.allow()
    clock.advance(10)
    assert breaker.allow()
    assert not breaker.allow()  # a second caller while the trial runs
    breaker.record(failed=True)
    assert not breaker.allow()  # re-opened
    clock.advance(10)
    assert breaker.allow()
    breaker.cancel_trial()
    assert breaker.allow()
