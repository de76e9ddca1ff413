"""Build a client's sync, future-returning and async methods from one "plan" function.

A plan method validates its arguments in the caller's thread (so bad input raises there and
nothing is sent) and returns a thunk that does the blocking work. From one plan:
- `blocking_method` runs the thunk in the caller's thread (warning once per method when that
  thread runs an asyncio loop, since the loop stalls meanwhile);
- `future_method` runs it on the runtime's pool and returns the future at once;
- `async_method` runs it on the runtime's pool and awaits it, so the loop never blocks and any
  loop works (a fresh `asyncio.run()` per call included).
Plans are named `_plan_<public name>`; the generated methods carry the public name.

Training operations use `_queue_<public name>` plans that queue the operation on the ordered
lane and return a `Queued`: `queued_method` returns its result future at once, and
`queued_async_method` returns it once the operation has been submitted to the server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import logging
import re
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar

import attrs

from tinker._futures import APIFuture, transform

__all__ = [
    "HasRuntime",
    "Queued",
    "Spawner",
    "async_method",
    "await_future",
    "blocking_method",
    "future_method",
    "queued_async_method",
    "queued_method",
    "warn_if_blocking_loop",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")
U = TypeVar("U")
P = ParamSpec("P")
S = TypeVar("S", bound="HasRuntime")
Thunk = Callable[[], T]

_PLAN_PREFIX = re.compile(r"^_(plan|queue)_")
_WRAPPED_RETURN = re.compile(r"^(?:Thunk|Queued)\[(.*)\]$")
_warned: set[str] = set()
_warned_lock = threading.Lock()


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


class Spawner(Protocol):
    """What the helpers need from a runtime: run a function on its worker pool."""

    def spawn(self, fn: Callable[..., T], *args: Any) -> Any: ...


class HasRuntime(Protocol):
    """A client object whose blocking work runs on `_runtime`'s pool."""

    @property
    def _runtime(self) -> Spawner: ...


async def await_future(future: concurrent.futures.Future[T]) -> T:
    """Await a concurrent future from whatever event loop is running, without blocking it."""
    return await asyncio.wrap_future(future)


def _rename(
    method: Callable[..., Any], plan: Callable[..., Any], suffix: str = "", returns: str = "{}"
) -> None:
    """Give `method` its public name and the plan's signature with the real return type."""
    name = _PLAN_PREFIX.sub("", plan.__name__) + suffix
    owner = plan.__qualname__.rpartition(".")[0]
    method.__name__ = name
    method.__qualname__ = f"{owner}.{name}" if owner else name
    signature = inspect.signature(plan)
    wrapped = str(signature.return_annotation)
    match = _WRAPPED_RETURN.match(wrapped)
    value = match.group(1) if match else wrapped
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        return_annotation=returns.format(value)
    )


def blocking_method(
    plan: Callable[Concatenate[S, P], Thunk[T]],
) -> Callable[Concatenate[S, P], T]:
    """The sync method: validate, then do the work in the caller's thread."""

    @functools.wraps(plan)
    def method(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        warn_if_blocking_loop(method.__qualname__)
        return plan(self, *args, **kwargs)()

    _rename(method, plan)
    return method


def future_method(
    plan: Callable[Concatenate[S, P], Thunk[T]],
) -> Callable[Concatenate[S, P], concurrent.futures.Future[T]]:
    """The future-returning method: validate, then run the work on the pool."""

    @functools.wraps(plan)
    def method(self: S, /, *args: P.args, **kwargs: P.kwargs) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = self._runtime.spawn(plan(self, *args, **kwargs))
        return future

    _rename(method, plan, returns="APIFuture[{}]")
    return method


def async_method(
    plan: Callable[Concatenate[S, P], Thunk[T]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """The `*_async` twin: validate, run the work on the pool, await it without blocking."""

    @functools.wraps(plan)
    async def method(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        future: concurrent.futures.Future[T] = self._runtime.spawn(plan(self, *args, **kwargs))
        return await await_future(future)

    _rename(method, plan, "_async")
    return method


@attrs.frozen
class Queued(Generic[T]):
    """A training operation queued on its lane: the result future and its submit futures."""

    result: APIFuture[T]
    submits: Sequence[concurrent.futures.Future[Any]] = ()

    async def submitted(self) -> APIFuture[T]:
        """Wait until every submit of the operation has run, then give the result future.

        A failed submit is not raised here: its error is the result future's.
        """
        if self.submits:
            done, _ = await asyncio.wait([asyncio.wrap_future(f) for f in self.submits])
            for finished in done:
                finished.exception()  # retrieved: it reaches the caller through `result`
        return self.result

    def map(self, fn: Callable[[T], U]) -> Queued[U]:
        """The same operation with `fn` applied to its result."""
        return Queued(transform(self.result, fn), self.submits)


def queued_method(
    plan: Callable[Concatenate[S, P], Queued[T]],
) -> Callable[Concatenate[S, P], APIFuture[T]]:
    """The training operation: queue it now, return its result future at once."""

    @functools.wraps(plan)
    def method(self: S, /, *args: P.args, **kwargs: P.kwargs) -> APIFuture[T]:
        return plan(self, *args, **kwargs).result

    _rename(method, plan, returns="APIFuture[{}]")
    method.__doc__ = f"{plan.__doc__} Returns its future at once."
    return method


def queued_async_method(
    plan: Callable[Concatenate[S, P], Queued[T]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, APIFuture[T]]]:
    """The `*_async` twin: queue now, return the result future once it has been submitted."""

    @functools.wraps(plan)
    async def method(self: S, /, *args: P.args, **kwargs: P.kwargs) -> APIFuture[T]:
        return await plan(self, *args, **kwargs).submitted()

    _rename(method, plan, "_async", returns="APIFuture[{}]")
    method.__doc__ = f"{plan.__doc__} Returns its future once the request is submitted."
    return method
