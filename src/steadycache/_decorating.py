"""Turning a decorated function's arguments into (key parts, scope), once per call."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from steadycache.errors import UsageError

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
    qualname = function.__qualname__

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
        # The function's name is part of the key: two functions sharing a namespace
        # must not answer for each other.
        return (qualname, *parts), scope

    return split
