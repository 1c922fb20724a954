"""The scenarios of the demo: the incident, each single fix, the defaults, cold deploys.

Every scenario runs the same traffic against the same database; only the namespace's
policy (and, for the incident and jitter, the application's cache-aside code) differs,
so any difference in the table is the policy's doing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from steadycache.policy import (
    CacheAside,
    EarlyRefresh,
    Policy,
    ReadThrough,
    RefreshAhead,
    SingleFlight,
    Stampede,
    Ttl,
)

TTL_SECONDS: Final = 60.0
#: The jitter scenario's spread: each entry lives between 0.8x and 1.0x of the TTL.
JITTER: Final = 0.2
#: How often (real seconds) the refresh-ahead worker looks for due keys. The default
#: (0.5 s) is meant for real time; at the demo's clock speed it would be ~15 simulated
#: seconds, so a 45 s refresh could land after the 60 s expiry.
REFRESH_CHECK_INTERVAL: Final = 0.02

Style = Literal["cache_aside", "read_through"]


@dataclass(frozen=True)
class Scenario:
    """One row of the table: a policy, how the application reads, and the start-up."""

    name: str
    title: str
    style: Style
    policy: Callable[[], Policy]
    #: Start with an empty cache and send the spike right after start-up.
    cold: bool = False
    #: Call ``warm()`` on the hot keys before the spike (cold deploys only).
    warm: bool = False


def _no_protection() -> Stampede:
    return Stampede(single_flight=None, early_refresh=None)


SCENARIOS: Final = (
    Scenario(
        "incident",
        "as in the incident: cache-aside, 60 s TTL, no jitter",
        "cache_aside",
        lambda: Policy(
            pattern=CacheAside(),
            invalidation=Ttl(TTL_SECONDS, jitter=0.0),
            stampede=_no_protection(),
        ),
    ),
    Scenario(
        "jitter",
        f"jitter only (cache-aside, TTL jitter {JITTER:.0%})",
        "cache_aside",
        lambda: Policy(
            pattern=CacheAside(),
            invalidation=Ttl(TTL_SECONDS, jitter=JITTER),
            stampede=_no_protection(),
        ),
    ),
    Scenario(
        "single_flight",
        "single-flight only (read-through)",
        "read_through",
        lambda: Policy(
            pattern=ReadThrough(),
            invalidation=Ttl(TTL_SECONDS, jitter=0.0),
            stampede=Stampede(single_flight=SingleFlight(), early_refresh=None),
        ),
    ),
    Scenario(
        "early_expiration",
        "early expiration (XFetch beta=1) + single-flight",
        "read_through",
        lambda: Policy(
            pattern=ReadThrough(),
            invalidation=Ttl(TTL_SECONDS, jitter=0.0),
            stampede=Stampede(single_flight=SingleFlight(), early_refresh=EarlyRefresh(beta=1.0)),
        ),
    ),
    Scenario(
        "refresh_ahead",
        "refresh-ahead at 45 s (the fix)",
        "read_through",
        lambda: Policy(
            pattern=ReadThrough(),
            invalidation=Ttl(TTL_SECONDS, jitter=0.0),
            stampede=Stampede(
                single_flight=SingleFlight(),
                early_refresh=None,
                refresh_ahead=RefreshAhead(at=0.75, check_interval=REFRESH_CHECK_INTERVAL),
            ),
        ),
    ),
    Scenario(
        "defaults",
        "steadycache defaults",
        "read_through",
        lambda: Policy(pattern=ReadThrough(), invalidation=Ttl(TTL_SECONDS)),
    ),
    Scenario(
        "cold_deploy",
        "cold deploy, defaults, no warm-up",
        "read_through",
        lambda: Policy(pattern=ReadThrough(), invalidation=Ttl(TTL_SECONDS)),
        cold=True,
    ),
    Scenario(
        "cold_deploy_warm",
        "cold deploy, defaults, warm() first",
        "read_through",
        lambda: Policy(pattern=ReadThrough(), invalidation=Ttl(TTL_SECONDS)),
        cold=True,
        warm=True,
    ),
)

SCENARIO_NAMES: Final = tuple(scenario.name for scenario in SCENARIOS)


def select(names: list[str] | None) -> tuple[Scenario, ...]:
    """The scenarios named (in the table's order), or all of them."""
    if not names:
        return SCENARIOS
    unknown = sorted(set(names) - set(SCENARIO_NAMES))
    if unknown:
        raise ValueError(
            f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIO_NAMES)}"
        )
    return tuple(scenario for scenario in SCENARIOS if scenario.name in names)
