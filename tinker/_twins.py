"""The `*_async` twins: each one is derived from its sync method by one of three rules.

Every public client method is a plain `def` carrying its docstring; its twin is declared right
below it as `name_async = twins.<rule>(name)`. The twin is a real `async def` with the same
parameters (`inspect.signature`, IDEs and mypy see them), never blocks the event loop, and works
from any loop, a fresh `asyncio.run()` per call included:

- `awaiting`: the sync method returns an APIFuture at once; the twin returns its value
  (REST calls, `sample`, `compute_logprobs`).
- `once_submitted`: the sync method queues a training operation and returns its APIFuture at
  once; the twin returns that future once the operation's requests are on the server.
- `offloaded`: the sync method blocks; the twin runs it on the runtime's blocking pool and
  returns what it returns (an APIFuture once its requests are on the server).

`blocking` marks a sync method that blocks its caller: called inside a running event loop, it
logs a warning (once per method) that names its twin.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import inspect
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from tinker._futures import APIFuture

__all__ = ["awaiting", "blocking", "offloaded", "once_submitted", "warn_if_blocking_loop"]

logger = logging.getLogger(__name__)
T = TypeVar("T")
P = ParamSpec("P")
S = TypeVar("S", bound="HasRuntime")
F = TypeVar("F", bound=Callable[..., Any])

_warned: set[str] = set()
_warned_lock = threading.Lock()


class _Spawner(Protocol):
    def spawn(self, fn: Callable[..., T], *args: Any) -> APIFuture[T]: ...


class HasRuntime(Protocol):
    """A client whose blocking work can run on its runtime's pool."""

    @property
    def holder(self) -> _Spawner: ...


def warn_if_blocking_loop(method: str, advice: str | None = None) -> None:
    """Log once per method name when a blocking call is made from a running event loop.

    `advice` says what to do instead (default: use the method's `*_async` twin).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    with _warned_lock:
        if method in _warned:
            return
        _warned.add(method)
    logger.warning(
        "%s() blocks the running asyncio event loop until it finishes; %s",
        method,
        advice or f"use {method}_async() from async code",
    )


def blocking(method: Callable[P, T]) -> Callable[P, T]:
    """Mark a sync method that blocks its caller (it warns inside a running event loop)."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        warn_if_blocking_loop(method.__qualname__)
        return method(*args, **kwargs)

    return wrapper


def awaiting(
    method: Callable[Concatenate[S, P], APIFuture[T]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """The twin of a method that returns an APIFuture at once: it returns the value."""

    async def twin(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await method(self, *args, **kwargs)

    return _named(twin, method, "returns its value", awaited=True)


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


def _named(twin: F, method: Callable[..., Any], does: str, *, awaited: bool = False) -> F:
    """Give `twin` the name `<method>_async`, a docstring, and the method's signature (with the
    awaited value as the return type when `awaited`)."""
    name = f"{method.__name__}_async"
    twin.__name__ = name
    twin.__qualname__ = f"{method.__qualname__}_async"
    twin.__module__ = method.__module__
    twin.__doc__ = f"Async twin of `{method.__name__}`: {does}."
    signature = inspect.signature(method)
    if awaited:
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
