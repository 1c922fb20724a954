"""Warm-up: load keys before traffic arrives, bounded in concurrency, rate and time.

One loop for threads (``run_warm_up``) and one for asyncio (``run_warm_up_async``); both
load through the namespace's own ``get_or_load``, so single-flight and the origin limiter
apply, and both report progress to the cache's ``Readiness``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from steadycache.stampede.readiness import Readiness

if TYPE_CHECKING:
    from steadycache.async_namespace import AsyncNamespace
    from steadycache.namespace import Namespace

logger = logging.getLogger("steadycache")


@dataclass(frozen=True, slots=True)
class WarmReport:
    """What ``warm()`` did: keys asked for, loaded, failed, and whether the deadline hit."""

    requested: int
    loaded: int
    failed: int
    deadline_reached: bool
    seconds: float


def run_warm_up(
    namespace: Namespace,
    work: list[tuple[object, Any, Callable[[], Any]]],
    *,
    concurrency: int,
    rate: float | None,
    deadline: float,
    target: float,
    readiness: Readiness,
) -> WarmReport:
    started = time.monotonic()
    stop_at = started + deadline
    goal = max(1, math.ceil(target * len(work))) if work else 0
    readiness.expect(goal)
    loaded = failed = 0
    counters = namespace._core.counters
    lock = threading.Lock()
    signalled = False

    def one(key: object, scope: Any, loader: Callable[[], Any]) -> None:
        nonlocal loaded, failed, signalled
        if time.monotonic() >= stop_at:
            return
        try:
            namespace.get_or_load(key, loader, scope=scope)
        except Exception as exc:
            logger.warning("warm-up load failed: namespace=%s error=%r", namespace.name, exc)
            with lock:
                failed += 1
            return
        readiness.progress()
        with lock:
            loaded += 1
            counters.warmed += 1
            if loaded >= goal and not signalled:
                signalled = True
                readiness.done()

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="steadycache-warm") as pool:
        for index, (key, scope, loader) in enumerate(work):
            if rate is not None:
                # Start times spaced 1/rate apart: a warm-up must not become its own stampede.
                delay = started + index / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            if time.monotonic() >= stop_at:
                break
            pool.submit(one, key, scope, loader)
    with lock:
        if not signalled:
            signalled = True
            readiness.done()
    elapsed = time.monotonic() - started
    return WarmReport(
        requested=len(work),
        loaded=loaded,
        failed=failed,
        deadline_reached=elapsed >= deadline,
        seconds=elapsed,
    )


async def run_warm_up_async(
    namespace: AsyncNamespace,
    work: list[tuple[object, Any, Callable[[], Awaitable[Any]]]],
    *,
    concurrency: int,
    rate: float | None,
    deadline: float,
    target: float,
    readiness: Readiness,
) -> WarmReport:
    started = time.monotonic()
    goal = max(1, math.ceil(target * len(work))) if work else 0
    readiness.expect(goal)
    slots = asyncio.Semaphore(concurrency)
    loaded = failed = 0
    signalled = False

    async def one(
        index: int, key: object, scope: Any, loader: Callable[[], Awaitable[Any]]
    ) -> None:
        nonlocal loaded, failed, signalled
        if rate is not None:
            # Start times spaced 1/rate apart: a warm-up must not become its own stampede.
            await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
        async with slots:
            try:
                await namespace.get_or_load(key, loader, scope=scope)
            except Exception as exc:
                logger.warning("warm-up load failed: namespace=%s error=%r", namespace.name, exc)
                failed += 1
                return
        readiness.progress()
        loaded += 1
        namespace._core.counters.warmed += 1
        if loaded >= goal and not signalled:
            signalled = True
            readiness.done()

    tasks = [asyncio.ensure_future(one(i, *item)) for i, item in enumerate(work)]
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=deadline)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    if not signalled:
        readiness.done()
    elapsed = time.monotonic() - started
    return WarmReport(
        requested=len(work),
        loaded=loaded,
        failed=failed,
        deadline_reached=elapsed >= deadline,
        seconds=elapsed,
    )
