"""The smallest cache that meets a target hit ratio, plus stated headroom."""

from __future__ import annotations

import math
from dataclasses import dataclass

from steadycache.sizing.mrc import MissRatioCurve, Unit

#: Added on top of the size the curve asks for. The curve describes the past trace; traffic
#: grows and shifts, a sampled curve carries error, and a real store spends memory on
#: metadata and fragmentation. 20% is a conventional margin; state a different one with
#: ``--headroom`` when you know better.
DEFAULT_HEADROOM = 0.2


@dataclass(frozen=True, kw_only=True)
class Recommendation:
    """What to provision for ``target_hit_ratio``; sizes are in ``unit`` and None when unmet."""

    target_hit_ratio: float
    unit: Unit
    needed_size: int | None
    recommended_size: int | None
    headroom: float
    hit_ratio_at_needed: float | None
    hit_ratio_at_recommended: float | None
    best_hit_ratio: float

    @property
    def reachable(self) -> bool:
        """False when even an unbounded cache misses too often (first accesses always miss)."""
        return self.needed_size is not None


def recommend(
    curve: MissRatioCurve, target_hit_ratio: float, *, headroom: float = DEFAULT_HEADROOM
) -> Recommendation:
    """Size for ``target_hit_ratio`` from ``curve``."""
    if not 0.0 < target_hit_ratio <= 1.0:
        raise ValueError(f"target hit ratio must be in (0, 1], got {target_hit_ratio!r}")
    if headroom < 0:
        raise ValueError(f"headroom must be non-negative, got {headroom!r}")
    needed = curve.smallest_size_for(1.0 - target_hit_ratio)
    recommended = None if needed is None else math.ceil(needed * (1.0 + headroom))
    return Recommendation(
        target_hit_ratio=target_hit_ratio,
        unit=curve.unit,
        needed_size=needed,
        recommended_size=recommended,
        headroom=headroom,
        hit_ratio_at_needed=None if needed is None else 1.0 - curve.miss_ratio(needed),
        hit_ratio_at_recommended=(
            None if recommended is None else 1.0 - curve.miss_ratio(recommended)
        ),
        best_hit_ratio=1.0 - curve.floor,
    )
