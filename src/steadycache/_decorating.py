"""What both facades' ``cached`` share: the kind checks, the typed shapes of what they
return, and turning a decorated function's arguments into (key parts, scope), once per call.

The protocols below are written twice, once per flavour, on purpose: a sync call returns
``T``, an async one ``Coroutine[..., T]``, which the generator's word rules cannot rewrite.
The runtime object they describe is generated (``_async/cached.py``).
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Final, ParamSpec, Protocol, TypeVar

from steadycache.errors import UsageError

P = ParamSpec("P")
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

#: What each facade's ``cached`` decorates: a function, or a coroutine function.
Decorated = Callable[P, T]
AsyncDecorated = Callable[P, Coroutine[Any, Any, T]]

#: Where a bare ``@cache.cached`` (no namespace named) keeps its results. One namespace
#: holds many functions safely: each function's keys start with its ``module.qualname``.
DEFAULT_NAMESPACE: Final = "default"


class Binding(enum.Enum):
    """How a decorated callable binds when read from a class or an instance."""

    #: A plain function: bound like one when read from an instance (``self``).
    FUNCTION = "function"
    #: Was a ``staticmethod``: never bound.
    STATIC = "static"
    #: Was a ``classmethod``: bound to the class, from the class or an instance.
    CLASS = "class"


def _is_async(function: Callable[..., Any]) -> bool:
    # An object whose __call__ is async (a function AsyncCache.cached returned) counts too.
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        type(function).__call__
    )


def check_kind(function: Callable[..., Any]) -> None:
    """``Cache.cached`` decorates sync functions only: fail at decoration, not on a call."""
    if _is_async(function) or inspect.isasyncgenfunction(function):
        raise UsageError(
            f"Cache.cached cannot decorate async function "
            f"{getattr(function, '__qualname__', function)!r}: use AsyncCache.cached"
        )


def check_kind_async(function: Callable[..., Any]) -> None:
    """``AsyncCache.cached`` decorates ``async def`` functions only."""
    if not _is_async(function):
        what = (
            "an async generator function (its results cannot be cached)"
            if inspect.isasyncgenfunction(function)
            else "a sync function: use Cache.cached"
        )
        raise UsageError(
            f"AsyncCache.cached cannot decorate "
            f"{getattr(function, '__qualname__', function)!r}, {what}"
        )


class BoundCachedFunction(Protocol[T_co]):
    """A cached function read from a class or an instance: a method bound to its instance,
    a classmethod to its class (neither part of the key), a staticmethod as it is.

    Its arguments are not checked by type: the type system cannot drop a ``ParamSpec``'s
    first parameter and keep the others' names, and type checkers see a ``classmethod``
    under ``@cache.cached`` as the plain function it holds."""

    namespace: Any
    __name__: str
    __qualname__: str

    def __call__(self, *args: Any, **kwargs: Any) -> T_co: ...

    def key(self, *args: Any, **kwargs: Any) -> str:
        """The stored key of this call's result."""
        ...

    def invalidate(self, *args: Any, **kwargs: Any) -> bool:
        """Invalidate this call's result in every process; whether an entry was there."""
        ...


class AsyncBoundCachedFunction(Protocol[T_co]):
    """``BoundCachedFunction`` for ``AsyncCache.cached``."""

    namespace: Any
    __name__: str
    __qualname__: str

    def __call__(self, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, T_co]: ...

    def key(self, *args: Any, **kwargs: Any) -> str:
        """The stored key of this call's result."""
        ...

    def invalidate(self, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, bool]:
        """Invalidate this call's result in every process; whether an entry was there."""
        ...


class CachedFunction(Protocol[P, T_co]):
    """What ``Cache.cached`` returns: the function, read through its namespace."""

    #: The namespace holding the function's results (a ``Namespace``).
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

    def __get__(
        self, instance: object, owner: type[Any] | None = None, /
    ) -> BoundCachedFunction[T_co]: ...


class AsyncCachedFunction(Protocol[P, T_co]):
    """What ``AsyncCache.cached`` returns: the coroutine function, read through its namespace."""

    #: The namespace holding the function's results (an ``AsyncNamespace``).
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

    def __get__(
        self, instance: object, owner: type[Any] | None = None, /
    ) -> AsyncBoundCachedFunction[T_co]: ...


def unwrap_method(function: Any) -> tuple[Callable[..., Any], Binding]:
    """The function inside a ``staticmethod``/``classmethod``, and how it binds."""
    if isinstance(function, staticmethod):
        return function.__func__, Binding.STATIC
    if isinstance(function, classmethod):
        return function.__func__, Binding.CLASS
    return function, Binding.FUNCTION


def is_decoratable(value: object) -> bool:
    """Whether ``cached``'s first argument is the function (bare ``@cache.cached``)."""
    return isinstance(value, staticmethod | classmethod) or callable(value)


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

_POSITIONAL: Final = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


@dataclass(frozen=True, slots=True)
class CallKeys:
    """How one decorated function's calls become ``(key parts, scope)``."""

    #: A call as made (a function, a staticmethod): every argument is in the key.
    plain: Splitter
    #: A call bound to an instance or a class: the first argument (``self``, ``cls``) is
    #: not in the key, unless ``instance_key`` says what of it is.
    method: Splitter


def call_key(
    function: Callable[..., Any],
    dimensions: tuple[str, ...],
    key: KeyFunction | None,
    instance_key: Callable[[Any], object] | None = None,
) -> CallKeys:
    """The functions mapping a call's arguments to ``(key parts, scope)``.

    Checked at decoration time: every scope dimension must be a parameter of ``function``,
    so a forgotten dimension fails when the module is imported, not on a user's request.
    The key parts are ``(module.qualname, *arguments)``: the arguments bound to the
    signature with defaults applied, in parameter order, without the scope's; ``key(*args,
    **kwargs)`` replaces them (and gets ``self`` too, in a method).
    """
    signature = inspect.signature(function)
    missing = [d for d in dimensions if d not in signature.parameters]
    if missing:
        raise UsageError(
            f"{function.__qualname__} has no parameter(s) {', '.join(missing)}, which its "
            "namespace declares as scope dimensions"
        )
    parameters = list(signature.parameters.values())
    first_positional = bool(parameters) and parameters[0].kind in _POSITIONAL
    if instance_key is not None:
        if key is not None:
            raise UsageError(
                f"{function.__qualname__}: give key= or instance_key=, not both (key= builds "
                "the whole key, and is given self as well)"
            )
        if not first_positional:
            raise UsageError(
                f"{function.__qualname__} has no first positional parameter (self, cls) for "
                "instance_key= to key"
            )
    # Bound calls: the signature without its first parameter, which the binding supplies.
    rest = signature.replace(parameters=parameters[1:]) if first_positional else signature
    # The module and qualified name are part of the key: two functions sharing a namespace
    # (billing.lookup and shipping.lookup) must not answer for each other.
    identity = function_identity(function)

    def parts(arguments: Mapping[str, Any]) -> tuple[tuple[object, ...], dict[str, object] | None]:
        scope = {d: arguments[d] for d in dimensions} if dimensions else None
        values = tuple(value for name, value in arguments.items() if name not in dimensions)
        return values, scope

    def plain(
        args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> tuple[object, dict[str, object] | None]:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values, scope = parts(bound.arguments)
        if key is not None:
            return key(*args, **kwargs), scope
        return (identity, *values), scope

    def method(
        args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> tuple[object, dict[str, object] | None]:
        bound = rest.bind(*args[1:], **kwargs)
        bound.apply_defaults()
        values, scope = parts(bound.arguments)
        if key is not None:
            return key(*args, **kwargs), scope
        if instance_key is not None:
            return (identity, instance_key(args[0]), *values), scope
        return (identity, *values), scope

    return CallKeys(plain, method)
