"""Turning a decorated function's arguments into (key parts, scope), once per call."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, ParamSpec, Protocol, TypeVar

from steadycache.errors import UsageError

P = ParamSpec("P")
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

#: What each facade's ``cached`` decorates: a function, or a coroutine function.
Decorated = Callable[P, T]
AsyncDecorated = Callable[P, Coroutine[Any, Any, T]]


def check_kind(function: Callable[..., Any]) -> None:
    """``Cache.cached`` decorates sync functions only: fail at decoration, not on a call."""
    if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
        raise UsageError(
            f"Cache.cached cannot decorate async function "
            f"{getattr(function, '__qualname__', function)!r}: use AsyncCache.cached"
        )


def check_kind_async(function: Callable[..., Any]) -> None:
    """``AsyncCache.cached`` decorates ``async def`` functions only."""
    if not inspect.iscoroutinefunction(function):
        what = (
            "an async generator function (its results cannot be cached)"
            if inspect.isasyncgenfunction(function)
            else "a sync function: use Cache.cached"
        )
        raise UsageError(
            f"AsyncCache.cached cannot decorate "
            f"{getattr(function, '__qualname__', function)!r}, {what}"
        )


class CachedFunction(Protocol[P, T_co]):
    """What ``Cache.cached`` returns: the function, read through its namespace."""

    #: The namespace holding the function's results.
    namespace: Any
    __name__: str
    __qualname__: str

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T_co: ...

    def key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The stored key of this call's result."""
        ...

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Invalidate this call's result in every process; whether an entry was there."""
        ...


class AsyncCachedFunction(Protocol[P, T_co]):
    """What ``AsyncCache.cached`` returns: the coroutine function, read through its namespace."""

    namespace: Any
    __name__: str
    __qualname__: str

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, T_co]: ...

    def key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The stored key of this call's result."""
        ...

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, bool]:
        """Invalidate this call's result in every process; whether an entry was there."""
        ...


def function_identity(function: Callable[..., Any]) -> str:
    """``module.qualname``: what a decorated function's keys start with."""
    module = getattr(function, "__module__", None) or "?"
    return f"{module}.{getattr(function, '__qualname__', repr(function))}"


def claim_identity(
    registry: dict[str, Callable[..., Any]],
    function: Callable[..., Any],
    namespace: str,
    key: KeyFunction | None,
) -> None:
    """Refuse a second, different function whose keys would be the first one's.

    Functions made by a factory (``make().<locals>.load``) share a module and a qualified
    name; cached in one namespace without ``key=``, they would silently answer for each
    other. The same function decorated twice is fine.
    """
    if key is not None:
        return  # the caller builds the keys and answers for them
    identity = function_identity(function)
    known = registry.setdefault(identity, function)
    if known is not function:
        raise UsageError(
            f"namespace {namespace!r} already caches another function named {identity}: "
            "their keys would collide. Give one of them key=..., or its own namespace"
        )


KeyFunction = Callable[..., object]
Splitter = Callable[[tuple[Any, ...], Mapping[str, Any]], tuple[object, dict[str, object] | None]]


def call_key(
    function: Callable[..., Any], dimensions: tuple[str, ...], key: KeyFunction | None
) -> Splitter:
    """A function mapping a call's arguments to ``(key parts, scope)``.

    Checked at decoration time: every scope dimension must be a parameter of ``function``,
    so a forgotten dimension fails when the module is imported, not on a user's request.
    """
    signature = inspect.signature(function)
    missing = [d for d in dimensions if d not in signature.parameters]
    if missing:
        raise UsageError(
            f"{function.__qualname__} has no parameter(s) {', '.join(missing)}, which its "
            "namespace declares as scope dimensions"
        )
    # The module and qualified name are part of the key: two functions sharing a namespace
    # (billing.lookup and shipping.lookup) must not answer for each other.
    identity = function_identity(function)

    def split(
        args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> tuple[object, dict[str, object] | None]:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = bound.arguments
        scope = {d: arguments[d] for d in dimensions} if dimensions else None
        if key is not None:
            return key(*args, **kwargs), scope
        parts = tuple(value for name, value in arguments.items() if name not in dimensions)
        return (identity, *parts), scope

    return split
