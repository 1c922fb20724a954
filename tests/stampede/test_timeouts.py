from __future__ import annotations

import time

import pytest

from steadycache import Cache, LoadTimeoutError, Policy, StaleIfError, Stampede, Ttl
from steadycache.policy import LoaderTimeouts


def test_soft_timeout_answers_stale_and_stores_the_late_value() -> None:
    with Cache() as cache:
        ns = cache.namespace(
            "t",
            Policy(
                invalidation=Ttl(0.05, jitter=0),
                stampede=Stampede(
                    timeouts=LoaderTimeouts(soft=0.02, hard=1.0),
                    stale_if_error=StaleIfError(10),
                    early_refresh=None,
                ),
            ),
        )
        ns.get_or_load("k", lambda: "v1")
        time.sleep(0.06)
        started = time.monotonic()

        def slow() -> str:
            time.sleep(0.1)
            return "v2"

        assert ns.get_or_load("k", slow) == "v1"
        assert time.monotonic() - started < 0.09
        time.sleep(0.15)
        entry = ns.get_entry("k")
        assert entry is not None
        assert entry.value == "v2"
        assert ns.stats().soft_timeouts == 1


def test_hard_timeout_raises_without_stale() -> None:
    with Cache() as cache:
        ns = cache.namespace("t", Policy(stampede=Stampede(timeouts=LoaderTimeouts(hard=0.05))))
        started = time.monotonic()
        with pytest.raises(LoadTimeoutError, match="hard timeout"):
            ns.get_or_load("k", lambda: time.sleep(0.3))
        assert time.monotonic() - started < 0.25
        assert ns.stats().hard_timeouts == 1
