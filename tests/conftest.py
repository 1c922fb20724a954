"""Shared fixtures: an injected clock and random source, so timing is tested without sleeping."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.redis_servers import RedisServer

# The Redis topologies (killable standalone, cluster, replicated, Sentinel) for every test,
# the generated twins in tests/_async and tests/_sync as well as tests/redis.
pytest_plugins = ["tests.fixtures_redis"]

# Hypothesis budgets: "default" in `make test` (no deadline: these machines are shared and
# noisy), "fuzz" in `make fuzz` (FUZZ_CASES scales the seeded fuzz loops the same way).
# The "too slow" health check is wall time too: a busy machine fails it, not the code.
settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "fuzz", deadline=None, max_examples=5_000, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


class ManualClock:
    """A clock that moves only when the test says so."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ScriptedRandom:
    """A random source returning a fixed value (settable), for deterministic decisions."""

    def __init__(self, value: float = 0.5) -> None:
        self.value = value
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.value


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def rand() -> ScriptedRandom:
    return ScriptedRandom()


@pytest.fixture
def cache(clock: ManualClock, rand: ScriptedRandom) -> Iterator[object]:
    from steadycache import Cache

    with Cache(clock=clock, random=rand) as instance:
        yield instance


# --- a plain Redis of this session's own ------------------------------------------------------
#
# Tests never touch the machine's Redis on 6379: it is a user's (a developer's data, another
# session's run). Every test that needs "a Redis" gets this server, started on a free loopback
# port for this pytest session and emptied before each test (FLUSHALL is ours to run here),
# so two `make test` runs on one machine never see each other's keys.


@pytest.fixture(scope="session")
def plain_redis_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("plain-redis"), name="plain")
    try:
        server.start()  # fails (never skips) when redis-server is missing
        yield server
    finally:
        server.close()


@pytest.fixture
def plain_redis(plain_redis_session: RedisServer) -> RedisServer:
    """This session's own standalone Redis (no persistence), running and empty."""
    plain_redis_session.start()  # no-op unless a test stopped it
    plain_redis_session.execute("FLUSHALL")
    return plain_redis_session


@pytest.fixture
def redis_url(plain_redis: RedisServer) -> str:
    """URL of ``plain_redis``."""
    return plain_redis.url
