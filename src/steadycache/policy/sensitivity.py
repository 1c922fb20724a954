"""Decision 4, what the data is: whether, and how stale, it may be served from a cache."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from steadycache.errors import ConfigurationError
from steadycache.policy import checks
from steadycache.policy.checks import Duration, to_seconds


class Sensitivity(enum.Enum):
    """What the data is, which decides whether and how it may be cached."""

    PUBLIC = "public"
    """Same for everyone: cache freely."""
    PERSONAL = "personal"
    """About one person: needs scope dimensions and hashed key material."""
    TRANSACTIONAL = "transactional"
    """Money, stock, seats being sold: refused unless bounded staleness is acknowledged."""

    @staticmethod
    def transactional(*, max_staleness: Duration, acknowledged_by: str) -> SensitivityClass:
        """TRANSACTIONAL data, cached with a documented, bounded staleness."""
        return SensitivityClass(
            Sensitivity.TRANSACTIONAL,
            max_staleness=to_seconds(max_staleness, decision="sensitivity", what="max_staleness"),
            acknowledged_by=acknowledged_by,
        )


@dataclass(frozen=True, slots=True)
class SensitivityClass:
    """A sensitivity level plus, for TRANSACTIONAL, the staleness acknowledgement."""

    level: Sensitivity
    max_staleness: float | None = None
    acknowledged_by: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.level, Sensitivity):
            raise ConfigurationError(
                "sensitivity", f"level must be a Sensitivity, got {self.level!r}"
            )
        if self.max_staleness is not None:
            object.__setattr__(
                self,
                "max_staleness",
                to_seconds(self.max_staleness, decision="sensitivity", what="max_staleness"),
            )
        checks.text(
            self.acknowledged_by, decision="sensitivity", what="acknowledged_by", optional=True
        )
