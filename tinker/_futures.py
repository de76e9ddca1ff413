"""Futures: `APIFuture`, composition by done-callbacks, and the poller of server-side futures.

`APIFuture` is a `concurrent.futures.Future`, so `wait`/`as_completed` work; it adds
`request_id`, `result_async()` and `await`. Composition (`transform`, `combine`, `chain`) only
ever uses done-callbacks: no thread blocks on another future.

The `Poller` resolves server-side futures (PROTOCOL.md 4.3) with a bounded set of worker
threads: pending futures sit in one time-ordered queue and each worker long-polls the next due
one, so thousands of pending futures cost no extra threads.
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import contextlib
import enum
import heapq
import itertools
import logging
import sys
import threading
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from tinker._retry import POLL_BACKOFF
from tinker.errors import (
    APIConnectionError,
    RequestErrorCategory,
    RequestFailedError,
    TinkerError,
    status_error,
)
from tinker.lib.retryable_exception import RetryableException

if TYPE_CHECKING:  # the HTTP stack loads only when a runtime starts
    from tinker._http import Reply

__all__ = [
    "APIFuture",
    "Poller",
    "QueueState",
    "QueueStateObserver",
    "chain",
    "combine",
    "completed",
    "failed",
    "reject",
    "resolve",
    "transform",
]

logger = logging.getLogger(__name__)
S = TypeVar("S")
T = TypeVar("T")


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

    def _prepare_wait(self) -> None:
        hook = self._before_wait
        if hook is not None and not self.done():
            try:
                hook()
            except Exception:
                logger.debug("pre-wait hook failed", exc_info=True)

    @property
    def request_id(self) -> str | None:
        """The server's id of the request behind this future, once known."""
        return self._request_id

    def result(self, timeout: float | None = None) -> T:
        """Wait up to `timeout` seconds (None: no limit) and return the value or raise."""
        self._prepare_wait()
        try:
            return super().result(timeout)
        except concurrent.futures.TimeoutError:
            if sys.version_info < (3, 11):  # the two TimeoutErrors are one class from 3.11
                raise TimeoutError(f"no result within {timeout}s") from None
            raise

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """Wait like `result` and return the exception (None on success)."""
        self._prepare_wait()
        try:
            return super().exception(timeout)
        except concurrent.futures.TimeoutError:
            if sys.version_info < (3, 11):
                raise TimeoutError(f"no result within {timeout}s") from None
            raise

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
                raise TimeoutError(f"no result within {timeout}s") from None
        return self.result(0)

    def __await__(self) -> Generator[Any, None, T]:
        return self.result_async().__await__()

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
    """A future of `fn(source's value)`; errors (of the source or of `fn`) pass through."""
    out: APIFuture[T] = _derived(source, request_id=_request_id_of(source))

    def done(src: concurrent.futures.Future[S]) -> None:
        value, exc = _outcome(src)
        if exc is not None:
            reject(out, exc)
            return
        try:
            resolve(out, fn(value))
        except BaseException as error:
            reject(out, error)

    source.add_done_callback(done)
    return out


def chain(
    source: concurrent.futures.Future[S], fn: Callable[[S], concurrent.futures.Future[T]]
) -> APIFuture[T]:
    """A future of the future that `fn(source's value)` returns (flattened)."""
    out: APIFuture[T] = _derived(source, request_id=_request_id_of(source))

    def inner_done(inner: concurrent.futures.Future[T]) -> None:
        value, exc = _outcome(inner)
        if exc is not None:
            reject(out, exc)
        else:
            resolve(out, value)

    def outer_done(src: concurrent.futures.Future[S]) -> None:
        value, exc = _outcome(src)
        if exc is not None:
            reject(out, exc)
            return
        try:
            inner = fn(value)
        except BaseException as error:
            reject(out, error)
            return
        inner_id = _request_id_of(inner)
        if inner_id is not None:
            out._request_id = inner_id
        if out._before_wait is None and isinstance(inner, APIFuture):
            out._before_wait = inner._before_wait
        inner.add_done_callback(inner_done)

    source.add_done_callback(outer_done)
    return out


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


class QueueState(enum.Enum):
    """Scheduling state of the server queue behind a request (reported with HTTP 408 polls)."""

    ACTIVE = "active"
    PAUSED_RATE_LIMIT = "paused_rate_limit"
    PAUSED_CAPACITY = "paused_capacity"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, value: object) -> QueueState:
        """Map a wire value to a state; anything unrecognised is UNKNOWN."""
        for member in cls:
            if member.value == value:
                return member
        return cls.UNKNOWN


class QueueStateObserver(abc.ABC):
    """Receives the queue state of the requests it created (clients implement this)."""

    @abc.abstractmethod
    def on_queue_state_change(self, queue_state: QueueState) -> None:
        """Called from a poll thread each time the server reports a queue state."""


@attrs.define(eq=False)
class _PollJob(Generic[T]):
    """One server-side future being polled; touched by one poll worker at a time."""

    future: APIFuture[T]
    request_id: str
    request_type: str
    structure: Callable[[Any], T]
    type_name: str
    observer: QueueStateObserver | None
    on_expired: Callable[[], None] | None
    roundtrip: float | None
    started: float = 0.0
    iteration: int = 0
    connection_failures: int = 0
    notices: int = 0


# What the poller sends: (request_id, extra headers) -> reply; raises APIConnectionError.
PollSender = Callable[[str, Mapping[str, str]], "Reply"]
# Telemetry hook: (event_name, event_data, severity).
EventSink = Callable[[str, dict[str, Any], str], None]

IDLE_WORKER_SECONDS = 30.0
LONG_WAIT_NOTICE = 600.0


class Poller:
    """Resolves server-side futures with at most `max_workers` poll threads.

    Each worker takes the next due job from a shared queue, sends one long poll and either
    resolves the future or puts the job back (at once for try_again/408/5xx, after
    `min(2**k, 30)` s for the k-th consecutive connection error). Workers start on demand and
    exit after 30 s without work, so the thread count is at most `max_workers` whatever the
    number of pending futures.
    """

    def __init__(
        self,
        send: PollSender,
        *,
        max_workers: int,
        clock: Callable[[], float] = time.monotonic,
        on_event: EventSink | None = None,
        name: str = "tinker-poll",
    ) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self._send = send
        self.max_workers = max_workers
        self._clock = clock
        self._on_event = on_event
        self._name = name
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _PollJob[Any]]] = []
        self._counter = itertools.count()
        self._workers: set[threading.Thread] = set()
        self._idle = 0
        self._active: set[_PollJob[Any]] = set()
        self._closed = False

    @property
    def worker_count(self) -> int:
        """Poll threads alive now."""
        return len(self._workers)

    @property
    def pending(self) -> int:
        """Futures not yet resolved (queued or being polled)."""
        with self._cond:
            return len(self._heap) + len(self._active)

    def track(
        self,
        request_id: str,
        request_type: str,
        structure: Callable[[Any], T],
        *,
        type_name: str = "object",
        observer: QueueStateObserver | None = None,
        submitted_at: float | None = None,
        on_expired: Callable[[], None] | None = None,
    ) -> APIFuture[T]:
        """Start polling `request_id`; the future resolves to `structure(result body)`.

        `submitted_at` (same clock as the poller, time.monotonic by default) is when the client
        operation started; the first poll reports the round trip since then.
        """
        future: APIFuture[T] = APIFuture(request_id)
        roundtrip = None if submitted_at is None else max(0.0, self._clock() - submitted_at)
        job = _PollJob(
            future=future,
            request_id=request_id,
            request_type=request_type,
            structure=structure,
            type_name=type_name,
            observer=observer,
            on_expired=on_expired,
            roundtrip=roundtrip,
            started=self._clock(),
        )
        if not self._enqueue(job, 0.0):
            reject(future, TinkerError(f"client closed; request {request_id} is not polled"))
        return future

    def _enqueue(self, job: _PollJob[Any], delay: float) -> bool:
        with self._cond:
            if self._closed:
                return False
            heapq.heappush(self._heap, (self._clock() + delay, next(self._counter), job))
            if self._idle == 0 and len(self._workers) < self.max_workers:
                worker = threading.Thread(
                    target=self._work, name=f"{self._name}-{len(self._workers)}", daemon=True
                )
                self._workers.add(worker)
                worker.start()
            else:
                self._cond.notify()
            return True

    def _next_job(self) -> _PollJob[Any] | None:
        """The next due job, or None when this worker should exit (closed or long idle)."""
        idle_since = self._clock()
        with self._cond:
            while not self._closed:
                now = self._clock()
                if self._heap and self._heap[0][0] <= now:
                    job = heapq.heappop(self._heap)[2]
                    self._active.add(job)
                    return job
                if not self._heap and now - idle_since >= IDLE_WORKER_SECONDS:
                    break
                timeout = self._heap[0][0] - now if self._heap else IDLE_WORKER_SECONDS
                self._idle += 1
                try:
                    self._cond.wait(min(timeout, IDLE_WORKER_SECONDS))
                finally:
                    self._idle -= 1
            self._workers.discard(threading.current_thread())
            return None

    def _work(self) -> None:
        while True:
            job = self._next_job()
            if job is None:
                return
            try:
                delay = self._poll_once(job)
            except BaseException as exc:  # a bug must fail the future, not kill the worker
                logger.exception("polling %s failed unexpectedly", job.request_id)
                reject(job.future, exc)
                delay = None
            with self._cond:
                self._active.discard(job)
            if delay is not None and not self._enqueue(job, delay):
                reject(job.future, TinkerError(f"client closed while {job.request_id} was pending"))

    def _event(self, name: str, job: _PollJob[Any], severity: str, **data: Any) -> None:
        if self._on_event is not None:
            data.update(
                request_id=job.request_id, request_type=job.request_type, iteration=job.iteration
            )
            self._on_event(name, data, severity)

    def _poll_once(self, job: _PollJob[Any]) -> float | None:
        """Poll once; return the delay before the next poll, or None once resolved."""
        if job.future.done():  # cancelled by its owner
            return None
        headers = {
            "X-Tinker-Request-Iteration": str(job.iteration),
            "X-Tinker-Request-Type": job.request_type,
            "X-Stainless-Raw-Response": "raw",
        }
        if job.iteration == 0 and job.roundtrip is not None:
            headers["X-Tinker-Create-Promise-Roundtrip-Time"] = str(job.roundtrip)
        try:
            reply = self._send(job.request_id, headers)
        except APIConnectionError as exc:
            delay = POLL_BACKOFF.delay(job.connection_failures)
            job.connection_failures += 1
            job.iteration += 1
            logger.warning(
                "polling %s failed (%s); polling again in %.0fs", job.request_id, exc, delay
            )
            self._event(
                "APIFuture.result_async.connection_error", job, "WARNING", exception=str(exc)
            )
            return delay
        job.iteration += 1
        job.connection_failures = 0
        next_poll = self._handle(job, reply)
        if next_poll is not None:
            self._note_long_wait(job)
        return next_poll

    def _note_long_wait(self, job: _PollJob[Any]) -> None:
        """Log (INFO) every 10 minutes that a request is still pending, so no wait is silent."""
        waited = self._clock() - job.started
        if waited >= LONG_WAIT_NOTICE * (job.notices + 1):
            job.notices += 1
            logger.info(
                "request %s (%s) still pending after %.0fs and %d polls",
                job.request_id,
                job.request_type,
                waited,
                job.iteration,
            )

    def _handle(self, job: _PollJob[Any], reply: Reply) -> float | None:
        status, body = reply.status_code, reply.body
        if 200 <= status < 300:
            if isinstance(body, dict) and body.get("type") == "try_again":
                logger.debug("request %s still pending (try_again)", job.request_id)
                return 0.0
            if isinstance(body, dict) and "error" in body:
                category = RequestErrorCategory.parse(body.get("category"))
                self._event(
                    "APIFuture.result_async.application_error",
                    job,
                    "WARNING" if category is RequestErrorCategory.User else "ERROR",
                    error_category=category.name,
                    exception=str(body["error"]),
                )
                reject(job.future, self._request_failed(job, body["error"], category))
                return None
            try:
                value = job.structure(body)
            except Exception as exc:
                self._event(
                    "APIFuture.result_async.validation_error", job, "ERROR", exception=str(exc)
                )
                reject(job.future, ValueError(f"Error retrieving result: {exc}"))
                return None
            resolve(job.future, value)
            return None
        if status == 408:
            if job.observer is not None:
                state = body.get("queue_state") if isinstance(body, dict) else None
                try:
                    job.observer.on_queue_state_change(QueueState.parse(state))
                except Exception:
                    logger.exception("queue-state observer failed for %s", job.request_id)
            logger.debug("request %s still pending (408)", job.request_id)
            return 0.0
        if status == 410:
            if job.on_expired is not None:
                try:
                    job.on_expired()
                except Exception:
                    logger.exception("expiry hook failed for %s", job.request_id)
            reject(
                job.future,
                RetryableException(f"Promise expired/broken for request {job.request_id}"),
            )
            return None
        error = status_error(status, body, response=reply)
        if status >= 500:
            self._event(
                "APIFuture.result_async.api_status_error",
                job,
                "WARNING",
                status_code=status,
                should_retry=True,
            )
            logger.debug("polling %s got HTTP %d; polling again", job.request_id, status)
            return 0.0
        self._event(
            "APIFuture.result_async.api_status_error",
            job,
            "ERROR",
            status_code=status,
            should_retry=False,
        )
        reject(
            job.future,
            ValueError(
                f"Error retrieving result: {error} with status code {status} "
                f"for request_id={job.request_id!r}"
            ),
        )
        return None

    @staticmethod
    def _request_failed(
        job: _PollJob[Any], error: object, category: RequestErrorCategory
    ) -> RequestFailedError:
        return RequestFailedError(
            f"Request failed: {error} for self.request_id={job.request_id!r} and expected type "
            f"self.model_cls={job.type_name}",
            request_id=job.request_id,
            category=category,
        )

    def inherited_jobs(self) -> list[_PollJob[Any]]:
        """The unresolved jobs, read without the lock: only for a forked child, where the lock
        may be stuck held by a thread that no longer exists."""
        return [entry[2] for entry in list(self._heap)] + list(self._active)

    def adopt(self, jobs: Sequence[_PollJob[Any]]) -> None:
        """Poll jobs inherited from another poller (the parent's, after fork)."""
        for job in jobs:
            if not job.future.done() and not self._enqueue(job, 0.0):
                reject(job.future, TinkerError(f"client closed while {job.request_id} was pending"))

    def close(self, *, reason: str = "client closed") -> None:
        """Stop polling; futures still pending fail with TinkerError(reason)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            jobs = [entry[2] for entry in self._heap] + list(self._active)
            self._heap.clear()
            self._cond.notify_all()
        for job in jobs:
            reject(job.future, TinkerError(f"{reason}; request {job.request_id} did not finish"))
