"""Freshness decisions: pure functions of (entry, now, policy, random source). No I/O.

The facades ask ``decide`` what to do with what the store returned; every timing
behaviour (jitter, early refresh, stale windows) is testable here with an injected clock
value and an injected random number, without sleeping.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from typing import Final

from steadycache._core.entry import Entry
from steadycache.policy import EarlyRefresh, Stampede, Ttl

RandomSource = Callable[[], float]

# XFetch refreshes when -load_cost * beta * ln(U) >= fresh_until - now. The probability of
# that is exp(-gap / (load_cost * beta)); beyond 30 such units it is below 1e-13, so the
# hot path skips drawing a random number at all.
XFETCH_HORIZON: Final = 30.0


class Action(enum.Enum):
    """What to do with a read."""

    SERVE = "serve"
    """Fresh: return it."""
    SERVE_AND_REFRESH = "serve_and_refresh"
    """Fresh, but chosen for early refresh: return it and reload in the background."""
    SERVE_STALE_AND_REFRESH = "serve_stale_and_refresh"
    """Stale within stale-while-revalidate: return it and reload in the background."""
    LOAD = "load"
    """Missing, dead, or stale beyond revalidation: load now (stale may still rescue errors)."""


# Module constants: reading an Enum member through its class costs ~100 ns on Python 3.11,
# and these are read on every request.
SERVE: Final = Action.SERVE
SERVE_AND_REFRESH: Final = Action.SERVE_AND_REFRESH
SERVE_STALE_AND_REFRESH: Final = Action.SERVE_STALE_AND_REFRESH
LOAD: Final = Action.LOAD


def decide(
    entry: Entry | None,
    now: float,
    stampede: Stampede,
    random: RandomSource,
) -> Action:
    """The action for ``entry`` read at ``now`` under ``stampede``."""
    if entry is None or now >= entry.stale_until:
        return LOAD
    if now < entry.fresh_until:
        early = stampede.early_refresh
        if early is not None and should_refresh_early(entry, now, early, random):
            return SERVE_AND_REFRESH
        return SERVE
    revalidate = stampede.stale_while_revalidate
    if revalidate is not None and now < entry.fresh_until + revalidate.seconds:
        return SERVE_STALE_AND_REFRESH
    return LOAD


def should_refresh_early(
    entry: Entry, now: float, early: EarlyRefresh, random: RandomSource
) -> bool:
    """XFetch (Vattani, Chierichetti, Lowenstein, VLDB 2015) for a still-fresh entry."""
    scale = entry.load_cost * early.beta
    if scale <= 0.0:
        return False
    gap = entry.fresh_until - now
    if gap > scale * XFETCH_HORIZON or gap > early.window * (entry.fresh_until - entry.stored_at):
        return False
    draw = random()
    if draw <= 0.0:  # ln(0) is -inf: the earliest possible refresh, i.e. now.
        return True
    return -scale * math.log(draw) >= gap


def can_serve_stale_on_error(entry: Entry | None, now: float, stampede: Stampede) -> bool:
    """Whether a loader failure may be answered with ``entry`` (stale-if-error)."""
    rescue = stampede.stale_if_error
    if entry is None or rescue is None:
        return False
    return now < entry.fresh_until + rescue.seconds and now < entry.stale_until


def lifetimes(
    now: float,
    ttl: Ttl,
    stampede: Stampede,
    random: RandomSource,
    ttl_override: float | None = None,
) -> tuple[float, float]:
    """``(fresh_until, stale_until)`` for an entry written at ``now``.

    Jitter shortens each lifetime by a random fraction up to ``ttl.jitter``, so entries
    written together expire spread over ``jitter * ttl`` seconds rather than in one instant.
    """
    seconds = ttl.seconds if ttl_override is None else ttl_override
    if ttl.jitter:
        seconds *= 1.0 - ttl.jitter * random()
    fresh_until = now + seconds
    return fresh_until, fresh_until + stampede.stale_seconds
