"""Warm-up: load keys before traffic arrives, bounded in concurrency, rate and time.

It loads through the namespace's own read path (``AsyncWarmTarget.warm_one``), so
single-flight and the origin limiter apply, and reports progress to the cache's
``Readiness``; it knows nothing else of the namespace.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from typing import Any, Protocol

from steadycache._runtime import AsyncLoader, AsyncRuntime
from steadycache.stampede.readiness import Readiness
from steadycache.stampede.warm import WarmProgress, WarmReport

logger = logging.getLogger("steadycache")


class AsyncWarmTarget(Protocol):
    """What a warm-up loads into: one namespace."""

    @property
    def name(self) -> str: ...

    async def warm_one(self, key: object, scope: Any, loader: AsyncLoader[Any]) -> None: ...


async def run_warm_up_async(
    target: AsyncWarmTarget,
    work: list[tuple[object, Any, AsyncLoader[Any]]],
    *,
    runtime: AsyncRuntime,
    concurrency: int,
    rate: float | None,
    deadline: float,
    goal: float,
    readiness: Readiness,
) -> WarmReport:
    """Load ``work`` (``(key, scope, loader)``) into ``target``; what happened."""
    started = time.monotonic()
    stop_at = started + deadline
    progress = WarmProgress(max(1, math.ceil(goal * len(work))) if work else 0, readiness)

    async def one(index: int, key: object, scope: Any, loader: AsyncLoader[Any]) -> None:
        if rate is not None:
            # Start times spaced 1/rate apart: a warm-up must not become its own stampede.
            await runtime.sleep(started + index / rate - time.monotonic())
        if time.monotonic() >= stop_at:
            return
        try:
            await target.warm_one(key, scope, loader)
        except Exception as exc:
            logger.warning("warm-up load failed: namespace=%s error=%r", target.name, exc)
            progress.failed()
            return
        progress.loaded()

    calls = [functools.partial(one, index, *item) for index, item in enumerate(work)]
    await runtime.run_all(calls, concurrency=concurrency, deadline=deadline)
    return progress.report(len(work), deadline, time.monotonic() - started)
