"""The `*_async` twins: each one is derived from its sync method by one of three rules.

Every public client method is a plain `def` carrying its docstring; its twin is declared right
below it as `name_async = twins.<rule>(name)`. The twin is a real `async def` with the same
parameters (`inspect.signature`, IDEs and mypy see them), never blocks the event loop, and works
from any loop, a fresh `asyncio.run()` per call included:

- `awaiting`: the sync method returns an APIFuture at once; the twin returns its value
  (REST calls, `sample`, `compute_logprobs`, client creation).
- `once_submitted`: the sync method queues a training operation and returns its APIFuture at
  once; the twin returns that future once the operation's requests are on the server.
- `offloaded`: the sync method blocks; the twin runs it on the runtime's blocking pool and
  returns what it returns (an APIFuture once its requests are on the server).

`blocking` marks a sync method that may block its caller: if it really waits (for the network,
or for a pending future) inside a running event loop, a warning naming its twin is logged once
per method (see tinker._loopguard); answered from a cache, it says nothing.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from tinker import _loopguard
from tinker._futures import APIFuture

__all__ = ["awaiting", "blocking", "offloaded", "once_submitted"]

T = TypeVar("T")
P = ParamSpec("P")
S = TypeVar("S", bound="HasRuntime")
F = TypeVar("F", bound=Callable[..., Any])


class _Spawner(Protocol):
    def spawn(self, fn: Callable[..., T], *args: Any) -> APIFuture[T]: ...


class HasRuntime(Protocol):
    """A client whose blocking work can run on its runtime's pool."""

    @property
    def holder(self) -> _Spawner: ...


def blocking(method: Callable[P, T]) -> Callable[P, T]:
    """Mark a sync method that may block its caller (a real wait inside a running event loop
    warns once, naming its twin)."""
    name = method.__qualname__
    advice = f"use {name}_async() from async code"

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        with _loopguard.calling(name, advice):
            return method(*args, **kwargs)

    return wrapper


def awaiting(
    method: Callable[Concatenate[S, P], APIFuture[T]],
    *,
    returns: str | None = None,
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """The twin of a method that returns an APIFuture at once: it returns the value.

    `returns` names the value's type when the method's annotation is a subclass of APIFuture
    (a client-creation future) rather than `APIFuture[...]` itself."""

    async def twin(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await method(self, *args, **kwargs)

    return _named(twin, method, "returns its value", awaited=returns or True)


def once_submitted(
    method: Callable[Concatenate[S, P], APIFuture[T]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, APIFuture[T]]]:
    """The twin of a queued training operation: it returns the APIFuture once submitted."""

    async def twin(self: S, /, *args: P.args, **kwargs: P.kwargs) -> APIFuture[T]:
        future = method(self, *args, **kwargs)
        await _submitted(future)
        return future

    return _named(twin, method, "returns its APIFuture once the request is submitted")


def offloaded(
    method: Callable[Concatenate[S, P], T],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """The twin of a blocking method: it runs on the runtime's blocking pool."""

    async def twin(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        work = functools.partial(method, self, *args, **kwargs)
        value = await asyncio.wrap_future(self.holder.spawn(work))
        if isinstance(value, APIFuture):
            await _submitted(value)
        return value

    return _named(twin, method, "runs on the SDK's threads and returns the same value")


async def _submitted(future: APIFuture[Any]) -> None:
    """Wait until the requests of a queued operation have been sent (or failed to be).

    A failed submit is not raised here: its error is the operation future's.
    """
    if future._submits:
        done, _ = await asyncio.wait([asyncio.wrap_future(f) for f in future._submits])
        for finished in done:
            finished.exception()  # retrieved: it reaches the caller through the future


def _named(twin: F, method: Callable[..., Any], does: str, *, awaited: bool | str = False) -> F:
    """Give `twin` the name `<method>_async`, a docstring, and the method's signature (with the
    awaited value as the return type when `awaited`, or the type `awaited` names)."""
    name = f"{method.__name__}_async"
    twin.__name__ = name
    twin.__qualname__ = f"{method.__qualname__}_async"
    twin.__module__ = method.__module__
    twin.__doc__ = f"Async twin of `{method.__name__}`: {does}."
    signature = inspect.signature(method)
    if isinstance(awaited, str):
        signature = signature.replace(return_annotation=awaited)
    elif awaited:
        signature = signature.replace(
            return_annotation=_awaited_type(signature.return_annotation, method.__qualname__)
        )
    twin.__signature__ = signature  # type: ignore[attr-defined]
    return twin


def _awaited_type(annotation: Any, where: str) -> Any:
    """`X` for a return annotation `APIFuture[X]` (a string under postponed annotations)."""
    if not isinstance(annotation, str):
        (inner,) = getattr(annotation, "__args__", (None,))
        return inner
    node = ast.parse(annotation, mode="eval").body
    if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "APIFuture":
        return ast.unparse(node.slice)
    raise TypeError(f"{where} must be annotated to return APIFuture[...], not {annotation!r}")
