"""Threads or asyncio: the only hand-written differences between the two, in one place.

steadycache's I/O logic is written once, as async code (the ``_async`` packages), and the
sync code is generated from it (``scripts/unasync.py``): ``AsyncEvent`` becomes ``Event``,
``await runtime.sleep(s)`` becomes ``runtime.sleep(s)``, and so on. What cannot be
generated, because threads and an event loop really do differ, is here, twice, with the
same names and signatures:

- ``Event`` / ``AsyncEvent``: set, clear and wait with a timeout;
- ``Semaphore`` / ``AsyncSemaphore``: acquire with a timeout, release;
- ``Runtime`` / ``AsyncRuntime``: the clock, background work (``spawn``), ``sleep``,
  running blocking code (``to_thread``), calling a loader with soft and hard timeouts,
  long-running services (the maintenance loop, the backplane listener, lease renewal) and
  bounded concurrent runs (warm-up);
- ``mark_coroutine_function`` / ``mark_coroutine_function_async``: what ``cached`` returns
  is an object, which only the async one marks as awaitable when called.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final, TypeVar

from steadycache.errors import UsageError

logger = logging.getLogger("steadycache")
T = TypeVar("T")
Clock = Callable[[], float]

# What the generated code's annotations name, in each flavour (``AsyncLoader[T]`` in the
# async source becomes ``Loader[T]`` in the sync code).
Call = Callable[..., T]
AsyncCall = Callable[..., Awaitable[T]]
Loader = Callable[[], T]
AsyncLoader = Callable[[], Awaitable[T]]
Writer = Callable[[Any], object]
AsyncWriter = Callable[[Any], Awaitable[object]]

#: Background refreshes run on this many threads (sync) per cache.
REFRESH_WORKERS: Final = 4
#: Loads with ``LoaderTimeouts`` run on these threads (sync): a thread cannot be
#: interrupted, so the caller waits on a future instead of running the loader itself.
TIMED_LOAD_WORKERS: Final = 32


# --- marking what is awaitable when called ---------------------------------------------------


def mark_coroutine_function(function: object) -> None:
    """Nothing: a sync callable object is not a coroutine function (the twin of the next)."""


def mark_coroutine_function_async(function: object) -> None:
    """Let ``inspect.iscoroutinefunction`` (3.12+) and ``asyncio.iscoroutinefunction`` (which
    frameworks such as Starlette and asgiref ask, on 3.11 too) say True of ``function``, an
    object whose ``__call__`` is ``async``, as they do of an ``async def`` function."""
    mark = getattr(inspect, "markcoroutinefunction", None)  # Python 3.12+
    if mark is not None:
        mark(function)
    marker = getattr(asyncio.coroutines, "_is_coroutine", None)  # what asyncio reads
    if marker is not None:
        setattr(function, "_is_coroutine", marker)  # noqa: B010 (no such attribute to type)


# --- events and semaphores ------------------------------------------------------------------


class Event:
    """A flag threads can wait on (``threading.Event``)."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None) -> bool:
        """Block until set or ``timeout`` seconds passed; whether it is set."""
        if timeout is not None and timeout > threading.TIMEOUT_MAX:
            timeout = threading.TIMEOUT_MAX
        return self._event.wait(timeout)


class AsyncEvent:
    """A flag coroutines of one loop can wait on.

    A wait is a future and a timer, never a task (``asyncio.wait_for`` makes one per
    waiter, and waking 500 tasks costs tens of milliseconds on a small machine).
    """

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[bool]] = []

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(True)

    def clear(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set

    async def wait(self, timeout: float | None) -> bool:
        """Wait until set or ``timeout`` seconds passed; whether it is set."""
        if self._set:
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(waiter)
        timer = None
        if timeout is not None:
            timer = loop.call_later(max(0.0, timeout), _resolve, waiter, False)
        try:
            return await waiter
        finally:
            if timer is not None:
                timer.cancel()
            if waiter in self._waiters:
                self._waiters.remove(waiter)


def _resolve(waiter: asyncio.Future[bool], value: bool) -> None:
    if not waiter.done():
        waiter.set_result(value)


class Semaphore:
    """``n`` slots for threads."""

    __slots__ = ("_slots",)

    def __init__(self, n: int) -> None:
        self._slots = threading.BoundedSemaphore(n)

    def acquire(self, timeout: float) -> bool:
        """Take a slot within ``timeout`` seconds; whether one was taken."""
        return self._slots.acquire(timeout=timeout)

    def release(self) -> None:
        self._slots.release()


class AsyncSemaphore:
    """``n`` slots for coroutines of one loop."""

    __slots__ = ("_slots",)

    def __init__(self, n: int) -> None:
        self._slots = asyncio.BoundedSemaphore(n)

    async def acquire(self, timeout: float) -> bool:
        """Take a slot within ``timeout`` seconds; whether one was taken."""
        if not self._slots.locked():
            await self._slots.acquire()  # free: no wait, no timer
            return True
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout)
        except TimeoutError:
            return False
        return True

    def release(self) -> None:
        self._slots.release()


class Lock:
    """Mutual exclusion for threads (``threading.Lock``), held across blocking calls."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


class AsyncLock:
    """Mutual exclusion for coroutines, held across awaits (``asyncio.Lock``)."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> None:
        await self._lock.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self._lock.release()


# --- the runtimes -----------------------------------------------------------------------


class Runtime:
    """Threads: background work on a small pool, services on daemon threads."""

    def __init__(self, clock: Clock) -> None:
        #: The cache's clock (wall time by default), injected so timing is testable.
        self.clock = clock
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._timed: ThreadPoolExecutor | None = None
        self._services: dict[str, threading.Thread | None] = {}
        self._closed = False

    # -- background work --

    def spawn(self, work: Callable[..., object], *args: Any) -> None:
        """Run ``work(*args)`` in the background; after ``close()`` it does not run."""
        with self._lock:
            if self._closed:
                return
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=REFRESH_WORKERS, thread_name_prefix="steadycache-refresh"
                )
            self._pool.submit(_logged, work, *args)

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    def to_thread(self, work: Callable[..., T], *args: Any) -> T:
        """Run blocking ``work`` (an fsync, a sync client): here, it is simply called."""
        return work(*args)

    # -- loaders --

    def call_loader(self, loader: Callable[[], T]) -> T:
        return _called(loader)

    def start_call(self, loader: Callable[[], T]) -> Future[T]:
        """Start ``loader`` where the caller can stop waiting for it (a pool thread)."""
        with self._lock:
            if self._timed is None:
                self._timed = ThreadPoolExecutor(
                    max_workers=TIMED_LOAD_WORKERS, thread_name_prefix="steadycache-load"
                )
            return self._timed.submit(_called, loader)

    def wait_call(self, pending: Future[T], timeout: float | None, *, keep: bool) -> T:
        """The call's result within ``timeout`` seconds, else ``TimeoutError``. The call
        goes on either way: a thread cannot be stopped (``keep`` matters for asyncio)."""
        return pending.result(timeout=timeout)

    def when_done(self, pending: Future[Any], work: Callable[..., object], *args: Any) -> None:
        """Run ``work(*args)`` once ``pending`` finished (it reads the result itself)."""
        pending.add_done_callback(lambda _: _logged(work, *args))

    def result(self, pending: Future[T]) -> T:
        """The result of a finished call (or its exception)."""
        return pending.result()

    # -- services and bounded runs --

    def want_service(self, name: str, loop: Callable[[], object]) -> None:
        """Keep ``loop()`` running as the service ``name`` (once per name): now, here."""
        with self._lock:
            if name in self._services or self._closed:
                return
            self._services[name] = None
        service = self.start_service(name, loop)
        with self._lock:
            self._services[name] = service

    def ensure_services(self) -> None:
        """Start wanted services that could not start yet (threads always can)."""

    def stop_services(self, timeout: float = 5.0) -> None:
        """Wait for every wanted service, whose loops were told to stop."""
        with self._lock:
            services = [service for service in self._services.values() if service is not None]
            self._services.clear()
        for service in services:
            self.stop_service(service, timeout)

    def start_service(self, name: str, loop: Callable[[], object]) -> threading.Thread:
        """Run ``loop()`` (a loop that returns when asked to stop) on a daemon thread."""
        thread = threading.Thread(target=_logged, args=(loop,), name=name, daemon=True)
        thread.start()
        return thread

    def stop_service(self, service: threading.Thread, timeout: float = 5.0) -> None:
        """Wait for a service whose loop was told to stop (its flag set, its event set)."""
        if service is not threading.current_thread():
            service.join(timeout)

    def run_all(
        self, calls: Iterable[Callable[[], object]], *, concurrency: int, deadline: float
    ) -> None:
        """Run the calls, at most ``concurrency`` at once, none starting after ``deadline``
        seconds from now (calls still check it themselves)."""
        with ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="steadycache-warm"
        ) as pool:
            for call in calls:
                pool.submit(_logged, call)

    # -- shutdown --

    def close(self) -> None:
        """Stop taking background work and wait for what is running."""
        with self._lock:
            self._closed = True
            pools = [self._pool, self._timed]
            self._pool = self._timed = None
        for pool in pools:
            if pool is not None:
                pool.shutdown(wait=True)


class AsyncRuntime:
    """asyncio: background work and services as tasks of the running loop."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wanted: dict[str, Callable[[], Awaitable[object]]] = {}
        self._services: dict[str, asyncio.Task[Any]] = {}
        self._running_services: set[asyncio.Task[Any]] = set()
        self._closed = False

    # -- background work --

    def spawn(self, work: Callable[..., Awaitable[object]], *args: Any) -> None:
        """Run ``work(*args)`` as a task; after ``aclose()`` it does not run."""
        if self._closed:
            return
        self._track(asyncio.get_running_loop().create_task(_logged_async(work, *args)))

    def _track(self, task: asyncio.Task[Any]) -> None:
        # Keep a reference: the loop holds tasks only weakly.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def to_thread(self, work: Callable[..., T], *args: Any) -> T:
        """Run blocking ``work`` (an fsync, a sync client) in a thread, off the loop."""
        return await asyncio.to_thread(work, *args)

    # -- loaders --

    async def call_loader(self, loader: Callable[[], Awaitable[T]]) -> T:
        return await _awaited(loader)

    def start_call(self, loader: Callable[[], Awaitable[T]]) -> asyncio.Future[T]:
        """Start ``loader`` as a task the caller can stop waiting for."""
        return asyncio.ensure_future(_awaited(loader))

    async def wait_call(
        self, pending: asyncio.Future[T], timeout: float | None, *, keep: bool
    ) -> T:
        """The call's result within ``timeout`` seconds, else ``TimeoutError``; with
        ``keep`` the call goes on after a timeout, without it the call is cancelled."""
        if keep:
            return await asyncio.wait_for(asyncio.shield(pending), timeout)
        return await asyncio.wait_for(pending, timeout)

    def when_done(
        self, pending: asyncio.Future[Any], work: Callable[..., Awaitable[object]], *args: Any
    ) -> None:
        """Run ``work(*args)`` as a task once ``pending`` finished."""
        pending.add_done_callback(lambda _: self.spawn(work, *args))

    async def result(self, pending: asyncio.Future[T]) -> T:
        return await pending

    # -- services and bounded runs --

    def want_service(self, name: str, loop: Callable[[], Awaitable[object]]) -> None:
        """Keep ``loop()`` running as the service ``name`` (once per name): now if a loop
        runs, else at the next ``ensure_services()`` (a namespace's first use)."""
        if name in self._services or self._closed:
            return
        self._wanted[name] = loop
        self.ensure_services()

    def ensure_services(self) -> None:
        """Start the wanted services, if an event loop is running now."""
        if not self._wanted:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # created outside a loop (at import): started on first use
        wanted, self._wanted = self._wanted, {}
        for name, loop in wanted.items():
            self._services[name] = self.start_service(name, loop)

    async def stop_services(self, timeout: float = 5.0) -> None:
        """Wait for every wanted service, whose loops were told to stop."""
        services, self._services = list(self._services.values()), {}
        self._wanted.clear()
        for service in services:
            await self.stop_service(service, timeout)

    def start_service(self, name: str, loop: Callable[[], Awaitable[object]]) -> asyncio.Task[Any]:
        """Run ``loop()`` as a task of the running loop (not background work: ``aclose``
        does not wait for it; its owner stops it)."""
        task = asyncio.get_running_loop().create_task(_logged_async(loop), name=name)
        self._running_services.add(task)  # the loop holds tasks only weakly
        task.add_done_callback(self._running_services.discard)
        return task

    async def stop_service(self, service: asyncio.Task[Any], timeout: float = 5.0) -> None:
        """Wait for a service told to stop; cancel it if it does not within ``timeout``.

        The wait after cancelling is bounded too: on Python 3.11 ``asyncio.wait_for`` (which
        redis-py runs every command through) can swallow a cancellation."""
        if service is asyncio.current_task():
            return
        done, _ = await asyncio.wait({service}, timeout=timeout)
        if not done:
            service.cancel()
            await asyncio.wait({service}, timeout=1.0)

    async def run_all(
        self, calls: Iterable[Callable[[], Awaitable[object]]], *, concurrency: int, deadline: float
    ) -> None:
        """Run the calls, at most ``concurrency`` at once; those still running after
        ``deadline`` seconds are cancelled."""
        slots = asyncio.Semaphore(concurrency)

        async def bounded(call: Callable[[], Awaitable[object]]) -> None:
            async with slots:
                await _logged_async(call)

        tasks = [asyncio.ensure_future(bounded(call)) for call in calls]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=deadline)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # -- shutdown --

    async def aclose(self) -> None:
        """Stop taking background work and wait for the tasks that are running."""
        self._closed = True
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _called(loader: Callable[[], T]) -> T:
    value = loader()
    if inspect.isawaitable(value):
        close = getattr(value, "close", None)
        if close is not None:
            close()  # a coroutine never awaited would warn
        raise UsageError(
            f"Namespace.get_or_load needs a sync loader; {loader!r} returned "
            f"{type(value).__name__}. Use AsyncCache / AsyncNamespace for async loaders"
        )
    return value


async def _awaited(loader: Callable[[], Awaitable[T]]) -> T:
    pending = loader()
    if not inspect.isawaitable(pending):
        raise UsageError(
            f"AsyncNamespace.get_or_load needs an async loader; {loader!r} returned "
            f"{type(pending).__name__}. Use Namespace (sync) for sync loaders"
        )
    return await pending


def _logged(work: Callable[..., object], *args: Any) -> None:
    try:
        work(*args)
    except Exception:  # background work reports its own failures; this is the last net
        logger.exception("steadycache background work failed")


async def _logged_async(work: Callable[..., Awaitable[object]], *args: Any) -> None:
    try:
        await work(*args)
    except Exception:  # background work reports its own failures; this is the last net
        logger.exception("steadycache background work failed")
