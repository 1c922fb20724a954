"""Decision 3, stampede protection: the value objects a ``Stampede`` is made of.

Single-flight, early refresh, stale windows, refresh-ahead, loader timeouts and the origin
limit; ``steadycache.stampede`` holds the machinery that carries them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from steadycache.errors import ConfigurationError
from steadycache.policy import checks
from steadycache.policy.checks import Duration, to_seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class SingleFlight:
    """Concurrent misses on one key in this process run the loader once; others wait."""

    #: How long a waiter waits for the leader's result before loading itself.
    wait_timeout: float = 5.0

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "wait_timeout",
            to_seconds(self.wait_timeout, decision="stampede", what="SingleFlight wait_timeout"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class EarlyRefresh:
    """Probabilistic early expiration (XFetch, Vattani et al., VLDB 2015).

    A read before ``fresh_until`` triggers a refresh with probability rising as expiry
    nears, scaled by the measured load cost: refresh when
    ``now - load_cost * beta * ln(U) >= fresh_until`` for ``U`` uniform in (0, 1].

    ``window`` bounds how early that can happen: only in the last ``window`` fraction of
    an entry's lifetime. A load cost measured under contention (a load that queued for a
    database connection) would otherwise make refreshes start far too early.
    """

    beta: float = 1.0
    window: float = 0.25

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "beta",
            checks.number(
                self.beta,
                decision="stampede",
                what="EarlyRefresh beta",
                low=0.0,
                high=100.0,
                low_open=True,
            ),
        )
        object.__setattr__(
            self,
            "window",
            checks.fraction(
                self.window, decision="stampede", what="EarlyRefresh window", low_open=True
            ),
        )


@dataclass(frozen=True, slots=True, init=False)
class StaleWhileRevalidate:
    """After ``fresh_until``, serve the stale value for up to ``seconds`` while one refresh runs."""

    seconds: float

    def __init__(self, seconds: Duration) -> None:
        object.__setattr__(
            self,
            "seconds",
            to_seconds(seconds, decision="stampede", what="StaleWhileRevalidate seconds"),
        )


@dataclass(frozen=True, slots=True, init=False)
class StaleIfError:
    """When the loader fails, serve the stale value for up to ``seconds`` past freshness."""

    seconds: float

    def __init__(self, seconds: Duration) -> None:
        object.__setattr__(
            self, "seconds", to_seconds(seconds, decision="stampede", what="StaleIfError seconds")
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshAhead:
    """Reload hot keys in the background at ``at`` x their TTL, so they never go cold.

    A key is hot while it was read within ``hot_window`` seconds (default: one TTL); cold
    keys are left to expire. ``check_interval`` is how often (real seconds) the worker looks.
    """

    at: float = 0.75
    hot_window: float | None = None
    check_interval: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "at",
            checks.fraction(
                self.at,
                decision="stampede",
                what="RefreshAhead at (a fraction of the TTL)",
                low_open=True,
                high_open=True,
            ),
        )
        if self.hot_window is not None:
            object.__setattr__(
                self,
                "hot_window",
                to_seconds(self.hot_window, decision="stampede", what="RefreshAhead hot_window"),
            )
        object.__setattr__(
            self,
            "check_interval",
            to_seconds(
                self.check_interval, decision="stampede", what="RefreshAhead check_interval"
            ),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LoaderTimeouts:
    """Bounds on one loader call.

    After ``soft`` seconds a caller holding a stale value is answered with it while the
    load finishes in the background; after ``hard`` seconds every caller stops waiting and
    gets ``LoadTimeoutError`` (or stale within stale-if-error).
    """

    soft: float | None = None
    hard: float | None = None

    def __post_init__(self) -> None:
        for name in ("soft", "hard"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(
                    self,
                    name,
                    to_seconds(value, decision="stampede", what=f"LoaderTimeouts {name}"),
                )
        if self.soft is not None and self.hard is not None and self.soft >= self.hard:
            raise ConfigurationError(
                "stampede", f"LoaderTimeouts soft ({self.soft}s) must be below hard ({self.hard}s)"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class OriginLimit:
    """The origin's budget: at most ``max_concurrent`` loads at once for the namespace.

    A load waits at most ``queue_timeout`` for a slot. After ``breaker_failures``
    consecutive loader failures the breaker opens for ``breaker_reset`` seconds and loads
    fail fast. Refused loads serve stale if the policy allows, else ``OriginOverloaded``.
    """

    max_concurrent: int = 8
    queue_timeout: float = 1.0
    breaker_failures: int = 5
    breaker_reset: float = 5.0

    def __post_init__(self) -> None:
        for name in ("max_concurrent", "breaker_failures"):
            checks.integer(getattr(self, name), decision="stampede", what=f"OriginLimit {name}")
        object.__setattr__(
            self,
            "queue_timeout",
            to_seconds(
                self.queue_timeout,
                decision="stampede",
                what="OriginLimit queue_timeout",
                allow_zero=True,
            ),
        )
        object.__setattr__(
            self,
            "breaker_reset",
            to_seconds(self.breaker_reset, decision="stampede", what="OriginLimit breaker_reset"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Stampede:
    """How concurrent misses and expiries are kept from reaching the origin all at once.

    The default (single-flight plus early refresh, with the jitter in ``Ttl``) is safe for
    the motivating incident; set a component to ``None`` to turn it off explicitly.
    """

    single_flight: SingleFlight | None = field(default_factory=SingleFlight)
    early_refresh: EarlyRefresh | None = field(default_factory=EarlyRefresh)
    stale_while_revalidate: StaleWhileRevalidate | None = None
    stale_if_error: StaleIfError | None = None
    refresh_ahead: RefreshAhead | None = None
    timeouts: LoaderTimeouts | None = None
    origin_limit: OriginLimit | None = None

    def __post_init__(self) -> None:
        expected: dict[str, type] = {
            "single_flight": SingleFlight,
            "early_refresh": EarlyRefresh,
            "stale_while_revalidate": StaleWhileRevalidate,
            "stale_if_error": StaleIfError,
            "refresh_ahead": RefreshAhead,
            "timeouts": LoaderTimeouts,
            "origin_limit": OriginLimit,
        }
        for name, kind in expected.items():
            value = getattr(self, name)
            if value is not None and not isinstance(value, kind):
                raise ConfigurationError(
                    "stampede", f"{name} must be {kind.__name__}(...) or None, got {value!r}"
                )

    @property
    def stale_seconds(self) -> float:
        """How long past ``fresh_until`` an entry may still be served in some situation."""
        windows = [
            self.stale_while_revalidate.seconds if self.stale_while_revalidate else 0.0,
            self.stale_if_error.seconds if self.stale_if_error else 0.0,
        ]
        return max(windows)
