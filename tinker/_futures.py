"""Futures: `APIFuture` and its composition by done-callbacks.

`APIFuture` is a `concurrent.futures.Future`, so `wait`/`as_completed` work; it adds
`request_id`, `result_async()` and `await`. Composition (`transform`, `chain`, `flatten`,
`combine`) only ever uses done-callbacks: no thread blocks on another future. A training
operation's future also knows the futures of its submits (`queued`), so that its async twin can
return it once the requests are on the server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import sys
import threading
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

from tinker import _loopguard

__all__ = [
    "APIFuture",
    "ResultTimeoutError",
    "abandonable",
    "chain",
    "combine",
    "completed",
    "failed",
    "flatten",
    "on_cancelled",
    "queued",
    "reject",
    "resolve",
    "settle_from",
    "transform",
]

logger = logging.getLogger(__name__)
S = TypeVar("S")
T = TypeVar("T")

if sys.version_info >= (3, 11):
    # One class from 3.11 on: concurrent.futures.TimeoutError is the builtin TimeoutError.
    ResultTimeoutError = TimeoutError
else:

    class ResultTimeoutError(concurrent.futures.TimeoutError, TimeoutError):
        """No result within the timeout: caught by `except concurrent.futures.TimeoutError`
        and by `except TimeoutError` alike (two different classes before Python 3.11)."""


# The main thread waits in slices this long: the operating system may deliver Ctrl-C's signal to
# any thread, and only a main thread that wakes up runs Python's handler (KeyboardInterrupt).
INTERRUPT_SLICE = 0.1


class APIFuture(concurrent.futures.Future[T]):
    """The result of an operation that completes in the background.

    `result(timeout)` blocks (raising TimeoutError after `timeout` seconds while the work goes
    on); `await fut` / `await fut.result_async()` wait from any event loop without blocking it.
    """

    def __init__(self, request_id: str | None = None) -> None:
        super().__init__()
        self._request_id = request_id
        # Called before a blocking wait: lets a runtime rebuild its threads in a forked child,
        # so that waiting on a future inherited from the parent never hangs.
        self._before_wait: Callable[[], None] | None = None
        # The futures of the requests a queued operation sends (see `queued`).
        self._submits: tuple[concurrent.futures.Future[Any], ...] = ()

    def _prepare_wait(self) -> None:
        hook = self._before_wait
        if hook is not None and not self.done():
            try:
                hook()
            except Exception:
                logger.debug("pre-wait hook failed", exc_info=True)

    def _note_wait(self, timeout: float | None) -> None:
        """A wait that blocks an event loop running in this thread is worth a warning."""
        if timeout != 0 and not self.done():
            _loopguard.note_blocking("APIFuture.result", "await the future instead")

    @property
    def request_id(self) -> str | None:
        """The server's id of the request behind this future, once known."""
        return self._request_id

    def result(self, timeout: float | None = None) -> T:
        """Wait up to `timeout` seconds (None: no limit) and return the value or raise.

        After `timeout` seconds it raises ResultTimeoutError, which both
        `except concurrent.futures.TimeoutError` and `except TimeoutError` catch, on every
        Python version; the work goes on.
        """
        self._wait(timeout)
        return super().result(0)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """Wait like `result` and return the exception (None on success)."""
        self._wait(timeout)
        return super().exception(0)

    def _wait(self, timeout: float | None) -> None:
        """Block until done, or raise ResultTimeoutError after `timeout` seconds. On the main
        thread the wait is cut in slices, so that Ctrl-C interrupts it at once."""
        self._prepare_wait()
        self._note_wait(timeout)
        main = threading.current_thread() is threading.main_thread()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while not self.done():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise ResultTimeoutError(f"no result within {timeout}s")
                if main:
                    remaining = (
                        INTERRUPT_SLICE if remaining is None else min(remaining, INTERRUPT_SLICE)
                    )
                self._condition.wait(remaining)

    async def result_async(self, timeout: float | None = None) -> T:
        """Await the result from the running event loop (any loop, including a fresh one)."""
        self._prepare_wait()
        if not self.done():
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()

            def wake(_: concurrent.futures.Future[T]) -> None:
                # RuntimeError: that loop is closed, so nobody waits any more.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_set_waiter, waiter)

            self.add_done_callback(wake)
            try:
                await asyncio.wait_for(waiter, timeout)
            except asyncio.TimeoutError:
                raise ResultTimeoutError(f"no result within {timeout}s") from None
        return self.result(0)

    def __await__(self) -> Generator[Any, None, T]:
        return self.result_async().__await__()

    async def coroutine(self) -> T:
        """A real coroutine awaiting this future (for `asyncio.create_task` and the like)."""
        return await self.result_async()

    def future(self) -> concurrent.futures.Future[T]:
        """This future itself (kept for code written against the official SDK)."""
        return self

    def __repr__(self) -> str:
        return f"<APIFuture request_id={self._request_id!r} state={self._state}>"


def _set_waiter(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def resolve(future: concurrent.futures.Future[T], value: T) -> None:
    """Set a result unless the future is already done (e.g. cancelled by its owner)."""
    try:
        if not future.done():
            future.set_result(value)
    except concurrent.futures.InvalidStateError:
        pass


def reject(future: concurrent.futures.Future[Any], exc: BaseException) -> None:
    """Set an exception unless the future is already done."""
    try:
        if not future.done():
            future.set_exception(exc)
    except concurrent.futures.InvalidStateError:
        pass


def settle_from(target: concurrent.futures.Future[T], done: concurrent.futures.Future[T]) -> None:
    """Give `target` the outcome of the finished future `done` (a cancellation cancels it)."""
    if done.cancelled():
        target.cancel()
    elif (exc := done.exception()) is not None:
        reject(target, exc)
    else:
        resolve(target, done.result())


def completed(value: T) -> APIFuture[T]:
    """A future that already holds `value`."""
    future: APIFuture[T] = APIFuture()
    future.set_result(value)
    return future


def failed(exc: BaseException) -> APIFuture[Any]:
    """A future that already holds the exception `exc`."""
    future: APIFuture[Any] = APIFuture()
    future.set_exception(exc)
    return future


def _outcome(source: concurrent.futures.Future[Any]) -> tuple[Any, BaseException | None]:
    if source.cancelled():
        return None, concurrent.futures.CancelledError()
    exc = source.exception()
    return (None, exc) if exc is not None else (source.result(), None)


def _request_id_of(source: concurrent.futures.Future[Any]) -> str | None:
    return source.request_id if isinstance(source, APIFuture) else None


def _derived(*sources: concurrent.futures.Future[Any], request_id: str | None = None) -> Any:
    """A new APIFuture that inherits the pre-wait hook of its sources."""
    out: APIFuture[Any] = APIFuture(request_id)
    for source in sources:
        if isinstance(source, APIFuture) and source._before_wait is not None:
            out._before_wait = source._before_wait
            break
    return out


def transform(source: concurrent.futures.Future[S], fn: Callable[[S], T]) -> APIFuture[T]:
    """A future of `fn(source's value)`; errors (of the source or of `fn`) pass through.

    The result of a queued operation stays one: it keeps the source's submits.
    """
    out: APIFuture[T] = _derived(source, request_id=_request_id_of(source))
    if isinstance(source, APIFuture):
        out._submits = source._submits
    source.add_done_callback(_Transform(out, fn).done)
    return out


def chain(
    source: concurrent.futures.Future[S], fn: Callable[[S], concurrent.futures.Future[T]]
) -> APIFuture[T]:
    """A future of the future that `fn(source's value)` returns (flattened)."""
    out: APIFuture[T] = _derived(source, request_id=_request_id_of(source))
    source.add_done_callback(_Chain(out, fn).outer_done)
    return out


# The callbacks of transform and chain are small objects rather than closures: thousands of
# them wait at once (one per request in flight), and fewer objects keep garbage collection cheap.


class _Transform:
    __slots__ = ("fn", "out")

    def __init__(self, out: APIFuture[Any], fn: Callable[[Any], Any]) -> None:
        self.out = out
        self.fn = fn

    def done(self, src: concurrent.futures.Future[Any]) -> None:
        value, exc = _outcome(src)
        if exc is not None:
            reject(self.out, exc)
            return
        try:
            resolve(self.out, self.fn(value))
        except BaseException as error:
            reject(self.out, error)


class _Chain:
    __slots__ = ("fn", "out")

    def __init__(self, out: APIFuture[Any], fn: Callable[[Any], Any]) -> None:
        self.out = out
        self.fn = fn

    def outer_done(self, src: concurrent.futures.Future[Any]) -> None:
        out = self.out
        value, exc = _outcome(src)
        if exc is not None:
            reject(out, exc)
            return
        try:
            inner = self.fn(value)
        except BaseException as error:
            reject(out, error)
            return
        inner_id = _request_id_of(inner)
        if inner_id is not None:
            out._request_id = inner_id
        if out._before_wait is None and isinstance(inner, APIFuture):
            out._before_wait = inner._before_wait
        inner.add_done_callback(self.inner_done)

    def inner_done(self, inner: concurrent.futures.Future[Any]) -> None:
        value, exc = _outcome(inner)
        if exc is not None:
            reject(self.out, exc)
        else:
            resolve(self.out, value)


def flatten(source: concurrent.futures.Future[Any]) -> APIFuture[Any]:
    """A future of the value of the future that `source` resolves to."""
    return chain(source, _identity)


def abandonable(source: concurrent.futures.Future[Any]) -> APIFuture[Any]:
    """`flatten(source)`, whose cancellation also cancels the future `source` resolves to
    (at once, or once it is known), so that its producer can stop the work behind it."""
    out: APIFuture[Any] = flatten(source)
    on_cancelled(out, functools.partial(source.add_done_callback, _cancel_result))
    return out


def _cancel_result(source: concurrent.futures.Future[Any]) -> None:
    if not source.cancelled() and source.exception() is None:
        source.result().cancel()


def on_cancelled(future: concurrent.futures.Future[Any], fn: Callable[[], Any]) -> None:
    """Call `fn()` if `future` ends cancelled (a cancellation travels to the work behind)."""
    future.add_done_callback(functools.partial(_call_if_cancelled, fn))


def _call_if_cancelled(fn: Callable[[], Any], future: concurrent.futures.Future[Any]) -> None:
    if future.cancelled():
        fn()


def _identity(value: S) -> S:
    return value


def combine(
    sources: Sequence[concurrent.futures.Future[Any]], fn: Callable[[list[Any]], T]
) -> APIFuture[T]:
    """A future of `fn([values in order])` once all `sources` succeed; the first error wins."""
    out: APIFuture[T] = _derived(*sources)
    if not sources:
        try:
            out.set_result(fn([]))
        except BaseException as error:
            out.set_exception(error)
        return out
    lock = threading.Lock()
    remaining = [len(sources)]

    def done(src: concurrent.futures.Future[Any]) -> None:
        _, exc = _outcome(src)
        if exc is not None:
            reject(out, exc)
            return
        with lock:
            remaining[0] -= 1
            last = remaining[0] == 0
        if last and not out.done():
            try:
                resolve(out, fn([source.result() for source in sources]))
            except BaseException as error:
                reject(out, error)

    for source in sources:
        source.add_done_callback(done)
    return out


def queued(result: APIFuture[T], submits: Sequence[concurrent.futures.Future[Any]]) -> APIFuture[T]:
    """Mark `result` as the future of an operation whose requests go out with `submits`.

    An async twin awaits those before it hands `result` back, so that the request is on the
    server when the coroutine returns (a failed submit shows in `result`, not there).
    """
    result._submits = tuple(submits)
    return result
