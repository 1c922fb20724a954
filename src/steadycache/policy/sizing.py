"""Decision 10, sizing: what one entry may cost."""

from __future__ import annotations

from dataclasses import dataclass

from steadycache.policy import checks


@dataclass(frozen=True, slots=True, kw_only=True)
class Sizing:
    """Limits on what one entry may cost."""

    max_value_bytes: int = 1024 * 1024

    def __post_init__(self) -> None:
        checks.integer(self.max_value_bytes, decision="sizing", what="max_value_bytes")
