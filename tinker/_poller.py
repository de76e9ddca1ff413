"""Resolving server-side futures: polling is a retry of the retrieve_future call.

A mutating endpoint answers `{request_id}` at once; the result comes from long-polling
`POST /api/v1/retrieve_future {"request_id": ...}`, which the server holds until the result is
ready or its own timeout. Each poll carries `X-Tinker-Request-Iteration` (0, 1, 2, ...),
`X-Tinker-Request-Type` and `X-Stainless-Raw-Response: raw`; the first also carries
`X-Tinker-Create-Promise-Roundtrip-Time` (seconds since the operation started). What a poll can
answer:

- 200 with the result: the future resolves to it (structured into the expected type);
- 200 `{"type": "try_again"}`, 408 (with the queue state, passed to the observer) or 5xx: not
  ready, poll again at once;
- 200 `{"error": ..., "category": ...}`: the request failed (RequestFailedError);
- 410: the promise expired or broke (RetryableException: a sampler resubmits);
- another 4xx: fatal (ValueError); no answer: poll again after `min(2**k, 30)` s.

`PollJob` is one tracked future and what its answers mean; the `Poller` runs each job's polls on
a bounded worker pool through the retry executor, so thousands of pending futures cost queue
entries, not threads. A batch poller (many ids per request) can sit beside it and reuse
`PollJob.outcome`.
"""

from __future__ import annotations

import abc
import concurrent.futures
import enum
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from tinker._futures import APIFuture, reject
from tinker._retry import POLL_BACKOFF, RetryExecutor
from tinker._transport import Reply
from tinker._workers import WorkerPool
from tinker.errors import (
    APIConnectionError,
    RequestErrorCategory,
    RequestFailedError,
    TinkerError,
    status_error,
)
from tinker.lib.retryable_exception import RetryableException

__all__ = ["NotReady", "PollJob", "Poller", "QueuePauseWarner", "QueueState", "QueueStateObserver"]

logger = logging.getLogger(__name__)

LONG_WAIT_NOTICE = 600.0
# What the poller sends: (request_id, extra headers) -> reply; raises APIConnectionError.
PollSender = Callable[[str, Mapping[str, str]], Reply]
# Telemetry hook: (event_name, event_data, severity).
EventSink = Callable[[str, dict[str, Any], str], None]


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


_PAUSE_REASONS = {
    QueueState.PAUSED_CAPACITY: "out of capacity",
    QueueState.UNKNOWN: "unknown",
}


class QueuePauseWarner:
    """Logs at most one warning per `interval` seconds while the server queue is paused."""

    def __init__(self, subject: str, rate_limit_reason: str, interval: float = 60.0) -> None:
        self._subject = subject
        self._rate_limit_reason = rate_limit_reason
        self._interval = interval
        self._last: float | None = None
        self._lock = threading.Lock()

    def __call__(self, queue_state: QueueState) -> None:
        if queue_state == QueueState.ACTIVE:
            return
        now = time.monotonic()
        with self._lock:
            if self._last is not None and now - self._last < self._interval:
                return
            self._last = now
        if queue_state == QueueState.PAUSED_RATE_LIMIT:
            reason = self._rate_limit_reason
        else:
            reason = _PAUSE_REASONS.get(queue_state, "unknown")
        logger.warning("%s Reason: %s", self._subject, reason)


class NotReady(Exception):
    """The poll answered that the result is not ready yet (try_again, 408 or 5xx)."""


# Outcomes of a poll that fail the future for good (the rest are bugs, logged as such).
_FINAL_ERRORS = (RequestFailedError, RetryableException, ValueError)


@attrs.define(eq=False)
class PollJob:
    """One server-side future being polled, and the poll policy that decides its next poll."""

    future: APIFuture[Any]
    request_id: str
    request_type: str
    structure: Callable[[Any], Any]
    type_name: str = "object"
    observer: QueueStateObserver | None = None
    on_expired: Callable[[], None] | None = None
    roundtrip: float | None = None
    clock: Callable[[], float] = time.monotonic
    on_event: EventSink | None = None
    started: float = attrs.field(init=False)
    iteration: int = 0
    connection_failures: int = 0
    notices: int = 0

    def __attrs_post_init__(self) -> None:
        self.started = self.clock()

    def headers(self) -> dict[str, str]:
        """The headers of the next poll."""
        headers = {
            "X-Tinker-Request-Iteration": str(self.iteration),
            "X-Tinker-Request-Type": self.request_type,
            "X-Stainless-Raw-Response": "raw",
        }
        if self.iteration == 0 and self.roundtrip is not None:
            headers["X-Tinker-Create-Promise-Roundtrip-Time"] = str(self.roundtrip)
        return headers

    def pause_after(self, error: Exception) -> float | None:
        """Poll again at once when not ready; back off on connection errors; else give up."""
        if isinstance(error, NotReady):
            self._note_long_wait()
            return 0.0
        if isinstance(error, APIConnectionError):
            delay = POLL_BACKOFF.delay(self.connection_failures)
            self.connection_failures += 1
            logger.warning(
                "polling %s failed (%s); polling again in %.0fs", self.request_id, error, delay
            )
            self.event("APIFuture.result_async.connection_error", "WARNING", exception=str(error))
            return delay
        if not isinstance(error, _FINAL_ERRORS):
            logger.error("polling %s failed unexpectedly", self.request_id, exc_info=error)
        return None

    def outcome(self, reply: Reply) -> Any:
        """The structured result of a poll's reply; raises NotReady or the final error."""
        status, body = reply.status_code, reply.body
        if 200 <= status < 300:
            if isinstance(body, dict) and body.get("type") == "try_again":
                logger.debug("request %s still pending (try_again)", self.request_id)
                raise NotReady
            if isinstance(body, dict) and "error" in body:
                raise self._failed(body)
            try:
                return self.structure(body)
            except Exception as exc:
                self.event("APIFuture.result_async.validation_error", "ERROR", exception=str(exc))
                raise ValueError(f"Error retrieving result: {exc}") from exc
        if status == 408:
            self._report_queue_state(body)
            logger.debug("request %s still pending (408)", self.request_id)
            raise NotReady
        if status == 410:
            self._expired()
            raise RetryableException(f"Promise expired/broken for request {self.request_id}")
        error = status_error(status, body, response=reply)
        retry = status >= 500
        self.event(
            "APIFuture.result_async.api_status_error",
            "WARNING" if retry else "ERROR",
            status_code=status,
            should_retry=retry,
        )
        if retry:
            logger.debug("polling %s got HTTP %d; polling again", self.request_id, status)
            raise NotReady
        raise ValueError(
            f"Error retrieving result: {error} with status code {status} "
            f"for request_id={self.request_id!r}"
        )

    def event(self, name: str, severity: str, **data: Any) -> None:
        """Report a telemetry event about this request."""
        if self.on_event is not None:
            data.update(
                request_id=self.request_id,
                request_type=self.request_type,
                iteration=self.iteration,
            )
            self.on_event(name, data, severity)

    def _failed(self, body: dict[str, Any]) -> RequestFailedError:
        category = RequestErrorCategory.parse(body.get("category"))
        self.event(
            "APIFuture.result_async.application_error",
            "WARNING" if category is RequestErrorCategory.User else "ERROR",
            error_category=category.name,
            exception=str(body["error"]),
        )
        return RequestFailedError(
            f"Request failed: {body['error']} for self.request_id={self.request_id!r} and "
            f"expected type self.model_cls={self.type_name}",
            request_id=self.request_id,
            category=category,
        )

    def _report_queue_state(self, body: Any) -> None:
        if self.observer is None:
            return
        state = body.get("queue_state") if isinstance(body, dict) else None
        try:
            self.observer.on_queue_state_change(QueueState.parse(state))
        except Exception:
            logger.exception("queue-state observer failed for %s", self.request_id)

    def _expired(self) -> None:
        if self.on_expired is None:
            return
        try:
            self.on_expired()
        except Exception:
            logger.exception("expiry hook failed for %s", self.request_id)

    def _note_long_wait(self) -> None:
        """Log (INFO) every 10 minutes that a request is still pending, so no wait is silent."""
        waited = self.clock() - self.started
        if waited >= LONG_WAIT_NOTICE * (self.notices + 1):
            self.notices += 1
            logger.info(
                "request %s (%s) still pending after %.0fs and %d polls",
                self.request_id,
                self.request_type,
                waited,
                self.iteration,
            )


class Poller:
    """Resolves server-side futures by long polls, at most `max_workers` at a time.

    Every pending future waits as one entry in the pool's queue; a worker sends its next poll
    and puts it back (at once when not ready, later after a connection error), so the thread
    count never depends on the number of pending futures.
    """

    def __init__(
        self,
        send: PollSender,
        *,
        max_workers: int,
        clock: Callable[[], float] = time.monotonic,
        on_event: EventSink | None = None,
        executor: RetryExecutor | None = None,
        before_wait: Callable[[], None] | None = None,
        name: str = "tinker-poll",
    ) -> None:
        self._send = send
        self._before_wait = before_wait
        self._clock = clock
        self._on_event = on_event
        self._executor = executor or RetryExecutor()
        self.pool = WorkerPool(max_workers, name=name)
        self._lock = threading.Lock()
        self._jobs: dict[concurrent.futures.Future[Any], PollJob] = {}
        self._closed = False

    @property
    def max_workers(self) -> int:
        """The most poll threads that ever run at once."""
        return self.pool.max_workers

    @property
    def worker_count(self) -> int:
        """Poll threads alive now."""
        return self.pool.worker_count

    @property
    def pending(self) -> int:
        """Futures not yet resolved."""
        return len(self._jobs)

    def track(
        self,
        request_id: str,
        request_type: str,
        structure: Callable[[Any], Any],
        *,
        type_name: str = "object",
        observer: QueueStateObserver | None = None,
        submitted_at: float | None = None,
        on_expired: Callable[[], None] | None = None,
    ) -> APIFuture[Any]:
        """Start polling `request_id`; the future resolves to `structure(result body)`.

        `submitted_at` (same clock as the poller, time.monotonic by default) is when the client
        operation started; the first poll reports the round trip since then.
        """
        roundtrip = None if submitted_at is None else max(0.0, self._clock() - submitted_at)
        future: APIFuture[Any] = APIFuture(request_id)
        future._before_wait = self._before_wait
        job = PollJob(
            future=future,
            request_id=request_id,
            request_type=request_type,
            structure=structure,
            type_name=type_name,
            observer=observer,
            on_expired=on_expired,
            roundtrip=roundtrip,
            clock=self._clock,
            on_event=self._on_event,
        )
        with self._lock:
            closed = self._closed
            if not closed:
                self._jobs[future] = job
        if closed:
            reject(future, TinkerError(f"client closed; request {request_id} is not polled"))
            return future
        future.add_done_callback(self._forget)
        self._start(job)
        return future

    def poll_once(self, job: PollJob) -> Any:
        """Send one poll for `job`: its result, or NotReady / the final error raised."""
        try:
            reply = self._send(job.request_id, job.headers())
        finally:
            job.iteration += 1
        job.connection_failures = 0
        return job.outcome(reply)

    def _start(self, job: PollJob) -> None:
        self._executor.submit(job, self.poll_once, pool=self.pool, into=job.future)

    def _forget(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._jobs.pop(future, None)

    def resume_inherited(self) -> None:
        """In a forked child: poll again every future inherited from the parent."""
        for job in list(self._jobs.values()):
            if not job.future.done():
                self._start(job)

    def close(self, *, reason: str = "client closed") -> None:
        """Stop polling; futures still pending fail with TinkerError(reason)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            jobs = list(self._jobs.values())
        for job in jobs:
            reject(job.future, TinkerError(f"{reason}; request {job.request_id} did not finish"))
        self.pool.close()

    def _after_fork_in_child(self) -> None:
        """A fresh lock and pool (threads and locks of the parent are gone); jobs are kept."""
        self._lock = threading.Lock()
        self.pool._after_fork_in_child()
