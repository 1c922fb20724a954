"""Running calls at once in a test: tasks on the event loop, or threads.

The async test sources (``tests/_async``) use the ``*_async`` forms; their generated sync
twins (``tests/_sync``) use the plain ones, which start one thread per call behind a
barrier so that every call is in flight together, as the tasks are. The two forms are
written by hand on purpose: they are the only place where threads and tasks differ.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: A loader as ``get_or_load`` takes it, in each flavour.
Loader = Callable[[], Any]
AsyncLoader = Callable[[], Awaitable[Any]]
#: A one-argument function to decorate with ``cached``, in each flavour.
Lookup = Callable[[int], str]
AsyncLookup = Callable[[int], Coroutine[Any, Any, str]]
#: A read a test polls until it gives the value it waits for, in each flavour.
Read = Callable[[], object]
AsyncRead = Callable[[], Awaitable[object]]


async def outcomes_async(calls: Iterable[Callable[[], Awaitable[T]]]) -> list[T | BaseException]:
    """Run every call at once; each one's result or exception, in order."""
    return list(await asyncio.gather(*(call() for call in calls), return_exceptions=True))


def outcomes(calls: Iterable[Callable[[], T]]) -> list[T | BaseException]:
    """Run every call at once, one thread each; each one's result or exception, in order."""
    work = list(calls)
    results: list[T | BaseException] = [RuntimeError("did not run")] * len(work)
    barrier = threading.Barrier(len(work))

    def run(index: int, call: Callable[[], T]) -> None:
        barrier.wait()
        try:
            results[index] = call()
        except BaseException as exc:  # handed back to the test, whatever it is
            results[index] = exc

    threads = [threading.Thread(target=run, args=item) for item in enumerate(work)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


async def gather_async(calls: Iterable[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run every call at once; their results, or the first exception."""
    return [_value(outcome) for outcome in await outcomes_async(calls)]


def gather(calls: Iterable[Callable[[], T]]) -> list[T]:
    """Run every call at once, one thread each; their results, or the first exception."""
    return [_value(outcome) for outcome in outcomes(calls)]


def _value(outcome: T | BaseException) -> T:
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def returning_async(
    value: object, calls: list[int] | None = None, *, delay: float = 0.0
) -> AsyncLoader:
    """An async loader returning ``value`` after ``delay`` seconds, counting its calls."""

    async def load() -> object:
        if calls is not None:
            calls.append(1)
        if delay:
            await asyncio.sleep(delay)
        return value

    return load


def returning(value: object, calls: list[int] | None = None, *, delay: float = 0.0) -> Loader:
    """A loader returning ``value`` after ``delay`` seconds, counting its calls."""
    import time

    def load() -> object:
        if calls is not None:
            calls.append(1)
        if delay:
            time.sleep(delay)
        return value

    return load


# --- one call in the background, a signal between calls, a blocking call beside them ---------


class AsyncSignal:
    """A flag one task sets and another waits for, with a timeout."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self, timeout: float = 5.0) -> bool:
        """Whether it was set within ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        return True


class Signal:
    """A flag one thread sets and another waits for, with a timeout."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float = 5.0) -> bool:
        """Whether it was set within ``timeout`` seconds."""
        return self._event.wait(timeout)


class AsyncBackground(Generic[T]):
    """A call running as a task while the test goes on; ``result()`` awaits its end."""

    def __init__(self, call: Callable[[], Awaitable[T]]) -> None:
        self._task = asyncio.ensure_future(call())

    async def result(self, timeout: float = 10.0) -> T:
        """Its result, or its exception, within ``timeout`` seconds."""
        return await asyncio.wait_for(self._task, timeout)


class Background(Generic[T]):
    """A call running in a thread of its own while the test goes on; ``result()`` joins it."""

    def __init__(self, call: Callable[[], T]) -> None:
        self._future: Future[T] = Future()
        threading.Thread(target=self._run, args=(call,), daemon=True).start()

    def _run(self, call: Callable[[], T]) -> None:
        try:
            self._future.set_result(call())
        except BaseException as exc:  # handed to whoever asks for the result
            self._future.set_exception(exc)

    def result(self, timeout: float = 10.0) -> T:
        """Its result, or its exception, within ``timeout`` seconds."""
        return self._future.result(timeout)


async def blocking_async(call: Callable[[], T]) -> T:
    """Make a blocking call (a fault put on a server) in a thread, so that the loop's tasks
    keep running meanwhile, as the sync twin's threads do."""
    return await asyncio.to_thread(call)


def blocking(call: Callable[[], T]) -> T:
    """Make a blocking call: the test's threads keep running beside it."""
    return call()


# --- waiting for background work, failing loaders, writers, a concurrency gauge ---------------

#: A source-of-truth writer as ``write(..., writer=)`` takes it, in each flavour.
Writer = Callable[[Any], object]
AsyncWriter = Callable[[Any], Awaitable[object]]


async def until_async(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition()`` (a counter, a flight) until it holds, the loop's tasks running
    meanwhile; fail after ``timeout`` seconds instead of sleeping a fixed time."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{condition} did not hold within {timeout} s")
        await asyncio.sleep(0.002)


def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition()`` until it holds, the background threads running meanwhile."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{condition} did not hold within {timeout} s")
        time.sleep(0.002)


def failing_async(
    error: Exception, calls: list[int] | None = None, *, delay: float = 0.0
) -> AsyncLoader:
    """An async loader raising ``error`` after ``delay`` seconds, counting its calls."""

    async def load() -> object:
        if calls is not None:
            calls.append(1)
        if delay:
            await asyncio.sleep(delay)
        raise error

    return load


def failing(error: Exception, calls: list[int] | None = None, *, delay: float = 0.0) -> Loader:
    """A loader raising ``error`` after ``delay`` seconds, counting its calls."""
    import time

    def load() -> object:
        if calls is not None:
            calls.append(1)
        if delay:
            time.sleep(delay)
        raise error

    return load


def held_async(value: object, started: AsyncSignal, release: AsyncSignal) -> AsyncLoader:
    """An async loader that sets ``started``, then returns ``value`` once ``release`` is set
    (or after 5 s): a load the test keeps in flight for as long as it needs."""

    async def load() -> object:
        started.set()
        await release.wait(5.0)
        return value

    return load


def held(value: object, started: Signal, release: Signal) -> Loader:
    """A loader that sets ``started``, then returns ``value`` once ``release`` is set."""

    def load() -> object:
        started.set()
        release.wait(5.0)
        return value

    return load


def writing_async(target: dict[str, object], key: str) -> AsyncWriter:
    """An async writer storing each value it is given as ``target[key]``."""

    async def write(value: object) -> None:
        target[key] = value

    return write


def writing(target: dict[str, object], key: str) -> Writer:
    """A writer storing each value it is given as ``target[key]``."""

    def write(value: object) -> None:
        target[key] = value

    return write


class Gauge:
    """How many calls are inside ``with gauge:`` at once, and the most there ever were.

    One class for both forms: it is thread-safe, and it never awaits, so a task cannot be
    switched out inside it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running = 0
        self.peak = 0

    def __enter__(self) -> None:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self.running -= 1


async def let_others_run_async() -> None:
    """Give the other tasks a turn (a read of an in-process store never suspends)."""
    await asyncio.sleep(0)


def let_others_run() -> None:
    """Give the other threads a turn."""
    import time

    time.sleep(0)
