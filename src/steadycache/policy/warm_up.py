"""Decision 6, cold start: whether hot keys are remembered and reloaded at start-up."""

from __future__ import annotations

from dataclasses import dataclass

from steadycache.policy import checks
from steadycache.policy.checks import to_seconds


@dataclass(frozen=True, slots=True)
class NoWarmUp:
    """Start cold: the first requests after a deploy all miss."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HotKeyWarmUp:
    """Track the namespace's hottest keys, snapshot them, reload them at start-up.

    ``top_k`` keys are tracked with Space-Saving (bounded memory). The snapshot is written
    every ``snapshot_interval`` seconds and at ``close()``, to ``snapshot_path``, or, when
    that is None and the namespace has ``SharedTiers``, to Redis, where every process of the
    fleet finds it (kept a week); ``warm()``
    reloads them with at most ``concurrency`` loads at once and ``rate`` loads per second,
    through the origin limiter. Readiness turns true at ``target`` (fraction of the
    snapshot loaded) or after ``deadline`` seconds, whichever comes first.
    """

    top_k: int = 1000
    snapshot_path: str | None = None
    snapshot_interval: float = 60.0
    concurrency: int = 4
    rate: float | None = None
    target: float = 0.9
    deadline: float = 30.0

    def __post_init__(self) -> None:
        for name in ("top_k", "concurrency"):
            checks.integer(getattr(self, name), decision="warm_up", what=f"HotKeyWarmUp {name}")
        checks.text(
            self.snapshot_path, decision="warm_up", what="HotKeyWarmUp snapshot_path", optional=True
        )
        if self.rate is not None:
            object.__setattr__(
                self,
                "rate",
                checks.number(
                    self.rate,
                    decision="warm_up",
                    what="HotKeyWarmUp rate",
                    low=0.0,
                    high=1e9,
                    low_open=True,
                ),
            )
        object.__setattr__(
            self,
            "target",
            checks.fraction(
                self.target, decision="warm_up", what="HotKeyWarmUp target", low_open=True
            ),
        )
        for name in ("snapshot_interval", "deadline"):
            object.__setattr__(
                self, name, to_seconds(getattr(self, name), decision="warm_up", what=name)
            )


WarmUp = NoWarmUp | HotKeyWarmUp
