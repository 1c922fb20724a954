"""What ``AsyncCache.cached`` returns: a function read through its namespace.

An object rather than a closure so that it binds as a method does, knowing it was bound:
``repo.find(42)`` reads it through ``__get__``, which hands ``repo`` over as the first
argument and leaves it out of the key (``instance_key`` says what of it goes in, when
results differ per instance). A closure cannot tell ``repo.find(42)`` from ``find(repo,
42)``. It is the one source of both flavours: the threads' form is generated from it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from steadycache._async.namespace import AsyncNamespace
from steadycache._core.durations import Duration
from steadycache._decorating import Binding, CallKeys, Splitter, function_identity
from steadycache._runtime import mark_coroutine_function_async


class AsyncCachedCallable:
    """A decorated function: its calls read through ``namespace``, keyed by their arguments."""

    def __init__(
        self,
        function: Callable[..., Any],
        namespace: AsyncNamespace,
        calls: CallKeys,
        *,
        ttl: Duration | None,
        binding: Binding,
    ) -> None:
        functools.update_wrapper(self, function)  # __name__, __doc__, __wrapped__, ...
        self._function = function
        #: The namespace holding this function's results.
        self.namespace = namespace
        self._calls = calls
        self._ttl = ttl
        self._binding = binding
        mark_coroutine_function_async(self)  # iscoroutinefunction() says what a call returns

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return await self.read(self._calls.plain, args, kwargs)

    def key(self, *args: Any, **kwargs: Any) -> str:
        """The stored key of this call's result (nothing is read)."""
        return self.stored_key(self._calls.plain, args, kwargs)

    async def invalidate(self, *args: Any, **kwargs: Any) -> bool:
        """Invalidate this call's result in every process; whether an entry was there."""
        return await self.drop(self._calls.plain, args, kwargs)

    def __get__(self, instance: object, owner: type[Any] | None = None) -> Any:
        if self._binding is Binding.STATIC:
            return self
        if self._binding is Binding.CLASS:
            return AsyncBoundCachedCallable(self, owner if owner is not None else type(instance))
        if instance is None:
            # Read from the class, as a plain function is: every argument is in the key.
            return self
        return AsyncBoundCachedCallable(self, instance)

    def __repr__(self) -> str:
        identity = function_identity(self._function)
        return f"<cached {identity} in namespace {self.namespace.name!r}>"

    def __reduce__(self) -> str:
        # Pickled by reference (its module's attribute), as the function it replaces was.
        return str(self._function.__qualname__)

    # --- what the bound form shares ---------------------------------------------------

    async def read(self, split: Splitter, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The call's result, read through the namespace (bad arguments raise first)."""
        key_parts, scope = split(args, kwargs)
        function = self._function
        return await self.namespace.get_or_load(
            key_parts, lambda: function(*args, **kwargs), scope=scope, ttl=self._ttl
        )

    def stored_key(self, split: Splitter, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        key_parts, scope = split(args, kwargs)
        return self.namespace.stored_key(key_parts, scope=scope)

    async def drop(self, split: Splitter, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        key_parts, scope = split(args, kwargs)
        return await self.namespace.invalidate(key_parts, scope=scope)

    @property
    def method_keys(self) -> Splitter:
        """The splitter of bound calls (the first argument is the instance or class)."""
        return self._calls.method


class AsyncBoundCachedCallable:
    """A cached method bound to an instance (or a cached classmethod to its class)."""

    __slots__ = ("_bound", "_cached")

    def __init__(self, cached: AsyncCachedCallable, bound: object) -> None:
        self._cached = cached
        self._bound = bound

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        cached = self._cached
        return await cached.read(cached.method_keys, (self._bound, *args), kwargs)

    def key(self, *args: Any, **kwargs: Any) -> str:
        """The stored key of this call's result (nothing is read)."""
        cached = self._cached
        return cached.stored_key(cached.method_keys, (self._bound, *args), kwargs)

    async def invalidate(self, *args: Any, **kwargs: Any) -> bool:
        """Invalidate this call's result in every process; whether an entry was there."""
        cached = self._cached
        return await cached.drop(cached.method_keys, (self._bound, *args), kwargs)

    @property
    def namespace(self) -> AsyncNamespace:
        """The namespace holding this method's results."""
        return self._cached.namespace

    def __getattr__(self, name: str) -> Any:
        # __name__, __qualname__, __wrapped__, ...: the decorated function's. (Not
        # self._cached: before __init__ has set it, that would recurse.)
        return getattr(object.__getattribute__(self, "_cached"), name)

    def __repr__(self) -> str:
        return f"<bound {self._cached!r} of {self._bound!r}>"
