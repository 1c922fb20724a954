"""Decision 9, observability: the window of the rolling hit ratio."""

from __future__ import annotations

from dataclasses import dataclass

from steadycache.policy.checks import to_seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class Observability:
    """Counters per namespace and tier, and the window of the rolling hit ratio."""

    rolling_window: float = 60.0

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "rolling_window",
            to_seconds(self.rolling_window, decision="observability", what="rolling_window"),
        )
