"""Shared fixtures: an injected clock and random source, so timing is tested without sleeping."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


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
