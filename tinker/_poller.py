"""Resolving server-side futures: polling is a retry of the retrieve_future call.

A mutating endpoint answers `{request_id}` at once; the result comes from long-polling
`POST /api/v1/retrieve_future {"request_id": ...}`, which the server holds until the result is
ready or its own timeout. Each poll carries `X-Tinker-Request-Iteration` (0, 1, 2, ...),
`X-Tinker-Request-Type` and `X-Stainless-Raw-Response: raw`; the first also carries
`X-Tinker-Create-Promise-Roundtrip-Time` (seconds since the operation started).

What an answer means is one table, `POLL_STEPS` (status -> `PollStep`), which a batch poller
reuses:

- 200 with the result: the future resolves to it (structured into the expected type; a body
  that does not fit fails with APIResponseValidationError);
- 200 `{"type": "try_again"}`, 408 (with the queue state, passed to the observer) or 5xx: not
  ready, poll again at once;
- 200 `{"error": ..., "category": ...}`: the request failed (RequestFailedError);
- 429, or no answer at all: poll again after `min(2**k, 30)` s (k counts them in a row; any
  other answer resets it);
- 400: poll again at once, at most 3 times per future (a 408 resets the count);
- 410: the promise expired or broke (RetryableException: a sampler resubmits);
- 404: the server does not know the request (it was restarted): NotFoundError saying what was
  lost and how to resume;
- another 4xx: fatal (ValueError).

Every future has two bounds (`PollLimits`): it fails with APITimeoutError once it has been
pending for `deadline` seconds (the client's `future_timeout`), and with APIConnectionError
once polls have had no answer for `unreachable_after` seconds (the server is gone); both
errors name the server, the request and how to resume.

`PollJob` is one tracked future and what its answers mean; the `Poller` runs each job's polls on
a bounded worker pool through the retry executor, so thousands of pending futures cost queue
entries, not threads.
"""

from __future__ import annotations

import abc
import concurrent.futures
import enum
import functools
import inspect
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs

from tinker._batch_poll import FINAL_ACK_TIMEOUT, BatchSender, BatchTarget, CompletionWatcher
from tinker._futures import APIFuture, reject
from tinker._limits import InFlightLimit
from tinker._retry import BILLING_PAUSE, MAX_BAD_REQUESTS, POLL_BACKOFF, RetryExecutor
from tinker._transport import Reply
from tinker._workers import ClientClosedError, WorkerPool
from tinker.errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APITimeoutError,
    NotFoundError,
    RequestErrorCategory,
    RequestFailedError,
    TinkerError,
    status_error,
)
from tinker.lib.retryable_exception import RetryableException
from tinker.metrics import ClientMetrics

__all__ = [
    "POLL_STEPS",
    "NotReady",
    "PollJob",
    "PollLimits",
    "PollStep",
    "Poller",
    "QueuePauseWarner",
    "QueueState",
    "QueueStateObserver",
    "poll_step",
    "resume_hint",
]

logger = logging.getLogger(__name__)

LONG_WAIT_NOTICE = 600.0
# How often the poller may log that the server does not answer.
UNREACHABLE_NOTICE = 30.0
# What the poller sends: (request_id, extra headers, allow_metadata_only) -> reply; raises
# APIConnectionError.
PollSender = Callable[[str, Mapping[str, str], bool], Reply]
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
    def on_queue_state_change(
        self, queue_state: QueueState, queue_state_reason: str | None = None
    ) -> None:
        """Called from a poll thread each time the server reports a queue state (and, when it
        gives one, its reason)."""


@functools.lru_cache(maxsize=64)
def reason_passing(observer_class: type) -> Literal["keyword", "positional"] | None:
    """How an observer class's on_queue_state_change takes the 0.38 reason argument: by its
    name `queue_state_reason` (or **kwargs), as a second positional argument, or not at all
    (an observer written for 0.5.1)."""
    try:
        signature = inspect.signature(observer_class.on_queue_state_change)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return None
    parameters = list(signature.parameters.values())
    named = signature.parameters.get("queue_state_reason")
    if (named is not None and named.kind is not named.POSITIONAL_ONLY) or any(
        p.kind is p.VAR_KEYWORD for p in parameters
    ):
        return "keyword"
    positional = [
        p
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    if len(positional) >= 3 or any(p.kind is p.VAR_POSITIONAL for p in positional):
        return "positional"
    return None


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

    def __call__(self, queue_state: QueueState, server_reason: str | None = None) -> None:
        """Warn (unless warned within the interval) that the queue is paused, with the
        server's reason when it gave one."""
        if queue_state == QueueState.ACTIVE:
            return
        now = time.monotonic()
        with self._lock:
            if self._last is not None and now - self._last < self._interval:
                return
            self._last = now
        if server_reason:
            reason = server_reason
        elif queue_state == QueueState.PAUSED_RATE_LIMIT:
            reason = self._rate_limit_reason
        else:
            reason = _PAUSE_REASONS.get(queue_state, "unknown")
        logger.warning("%s Reason: %s", self._subject, reason)


class PollStep(enum.Enum):
    """What the client does with one answer to a poll (see the module docstring)."""

    RESULT = "result"  # 2xx: the body is the result, a try_again, or the request's error
    AGAIN = "again"  # not ready yet: poll again at once
    BACK_OFF = "back off"  # rate limited: poll again after min(2**k, 30) s
    BAD_REQUEST = "bad request"  # poll again at once, a few times per future
    BILLING = "billing"  # paused for billing: poll again every 5 s within the pause window
    EXPIRED = "expired"  # the promise expired or broke: resubmit
    FORGOTTEN = "forgotten"  # the server does not know the request
    FATAL = "fatal"  # give up


# Status -> step; statuses not listed: 2xx RESULT, 5xx AGAIN, anything else FATAL.
POLL_STEPS: Mapping[int, PollStep] = {
    400: PollStep.BAD_REQUEST,
    402: PollStep.BILLING,
    404: PollStep.FORGOTTEN,
    408: PollStep.AGAIN,
    410: PollStep.EXPIRED,
    429: PollStep.BACK_OFF,
}


def poll_step(status: int) -> PollStep:
    """The step for an HTTP status of a poll answer."""
    step = POLL_STEPS.get(status)
    if step is not None:
        return step
    if 200 <= status < 300:
        return PollStep.RESULT
    return PollStep.AGAIN if status >= 500 else PollStep.FATAL


class NotReady(Exception):
    """The poll answered that the result is not ready yet; `back_off`: wait before the next
    poll (429) instead of polling again at once; `pause`: wait exactly that long (402)."""

    def __init__(self, *, back_off: bool = False, pause: float | None = None) -> None:
        super().__init__("not ready")
        self.back_off = back_off
        self.pause = pause

    @property
    def retry_cause(self) -> str | None:
        """What client metrics count: a 429 is a retry; polling again at once is none."""
        return "http_429" if self.back_off else None


# Outcomes of a poll that fail the future for good (the rest are bugs, logged as such).
_FINAL_ERRORS = (TinkerError, RetryableException, ValueError)

# Request types whose loss needs the training run resumed from a checkpoint.
_SAMPLING_TYPES = frozenset({"Sample"})


def resume_hint(request_type: str) -> str:
    """What a user can do after the result of a `request_type` request was lost."""
    if request_type in _SAMPLING_TYPES:
        return "Create a new SamplingClient (ServiceClient.create_sampling_client); sample again."
    return (
        "Resume from your last checkpoint: ServiceClient."
        "create_training_client_from_state_with_optimizer(<its tinker://.../weights/... path>)."
    )


@attrs.frozen
class PollLimits:
    """The bounds of every polled future: `deadline` seconds pending in all (the client's
    `future_timeout`), `unreachable_after` seconds of polls without any answer, and
    `billing_pause` seconds of HTTP 402 answers waited out (the negotiated server config)."""

    deadline: float = 7200.0
    unreachable_after: float = 300.0
    billing_pause: float = 3600.0


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
    server: str = "the server"
    limits: PollLimits = PollLimits()
    # Extra headers of every poll (Accept for protobuf results) and the era's poll features.
    accept: Mapping[str, str] = attrs.field(factory=dict)
    allow_metadata_only: bool = True
    on_unreachable: Callable[[PollJob, Exception, float], None] | None = None
    submitted_at: float | None = None
    metrics: ClientMetrics | None = None
    started: float = attrs.field(init=False)
    iteration: int = 0
    backoffs: int = 0  # 429s and unanswered polls in a row (the k of the back-off)
    bad_requests: int = 0
    billing_since: float | None = None  # the first 402 of the current billing pause
    unanswered_since: float | None = None
    last_error: str = ""
    notices: int = 0
    gave_up: APIError | None = None  # the bound it ran out of (check_bounds)

    def __attrs_post_init__(self) -> None:
        self.started = self.clock() if self.submitted_at is None else self.submitted_at

    @property
    def what(self) -> str:
        """How messages name the request, e.g. "ForwardBackward request 3f2a"."""
        return f"{self.request_type} request {self.request_id}"

    def headers(self) -> dict[str, str]:
        """The headers of the next poll."""
        headers = {
            "X-Tinker-Request-Iteration": str(self.iteration),
            "X-Tinker-Request-Type": self.request_type,
            "X-Stainless-Raw-Response": "raw",
            **self.accept,
        }
        if self.iteration == 0 and self.roundtrip is not None:
            headers["X-Tinker-Create-Promise-Roundtrip-Time"] = str(self.roundtrip)
        return headers

    def check_bounds(self) -> None:
        """Before a poll: raise the final error once the future has run out of time."""
        now = self.clock()
        since = self.unanswered_since
        if now - self.started >= self.limits.deadline:
            self.gave_up = APITimeoutError(
                f"{self.what} at {self.server} did not finish within "
                f"{self.limits.deadline:.0f} s (the client's future_timeout); its result is "
                f"lost. {resume_hint(self.request_type)}"
            )
        elif since is not None and now - since >= self.limits.unreachable_after:
            self.gave_up = APIConnectionError(
                f"Lost contact with {self.server}: polls of {self.what} got no answer for "
                f"{now - since:.0f} s (last error: {self.last_error}); its result is lost. "
                f"{resume_hint(self.request_type)}"
            )
        if self.gave_up is not None:
            raise self.gave_up

    def answered(self, *, rate_limited: bool = False) -> None:
        """The server answered a poll: it is there; unless it rate-limits (429), the back-off
        starts over."""
        self.unanswered_since = None
        if not rate_limited:
            self.backoffs = 0

    def pause_after(self, error: Exception) -> float | None:
        """Poll again at once when not ready; back off after a 429 or no answer (within the
        bounds, see `check_bounds`); else give up."""
        if error is self.gave_up:
            return None
        if isinstance(error, NotReady) and error.pause is not None:
            return max(0.0, min(error.pause, self.started + self.limits.deadline - self.clock()))
        if isinstance(error, NotReady) and not error.back_off:
            self._note_long_wait()
            return 0.0
        if isinstance(error, (NotReady, APIConnectionError)):
            return self._back_off(error)
        if not isinstance(error, _FINAL_ERRORS):
            logger.error("polling %s failed unexpectedly", self.request_id, exc_info=error)
        return None

    def _back_off(self, error: Exception) -> float:
        now = self.clock()
        delay = POLL_BACKOFF.delay(self.backoffs)
        self.backoffs += 1
        if isinstance(error, APIConnectionError):
            if self.unanswered_since is None:
                self.unanswered_since = now
            self.last_error = str(error)
            if self.on_unreachable is not None:
                self.on_unreachable(self, error, now - self.unanswered_since)
            self.event("APIFuture.result_async.connection_error", "WARNING", exception=str(error))
            bound = self.unanswered_since + self.limits.unreachable_after
        else:
            logger.debug("polling %s got HTTP 429; polling again in %.0fs", self.what, delay)
            bound = self.started + self.limits.deadline
        # Never sleep past a bound: the next poll then fails at once with its error.
        return max(0.0, min(delay, bound - now, self.started + self.limits.deadline - now))

    def outcome(self, reply: Reply) -> Any:
        """The structured result of a poll's reply; raises NotReady or the final error."""
        status, body = reply.status_code, reply.body
        step = poll_step(status)
        self.answered(rate_limited=step is PollStep.BACK_OFF)
        if step is not PollStep.BILLING:
            self.billing_since = None
        if step is PollStep.RESULT:
            return self._result(body)
        if step is PollStep.AGAIN:
            if status == 408:
                self.bad_requests = 0
                self._report_queue_state(body)
                logger.debug("request %s still pending (408)", self.request_id)
            else:
                self._status_event(status, retry=True)
                logger.debug("polling %s got HTTP %d; polling again", self.request_id, status)
            raise NotReady
        if step is PollStep.BACK_OFF:
            self._status_event(status, retry=True)
            raise NotReady(back_off=True)
        if step is PollStep.BAD_REQUEST and self.bad_requests < MAX_BAD_REQUESTS:
            self.bad_requests += 1
            self._status_event(status, retry=True)
            logger.debug("polling %s got HTTP 400 (%d in a row)", self.what, self.bad_requests)
            raise NotReady
        if step is PollStep.BILLING and self._billing_paused():
            raise NotReady(pause=BILLING_PAUSE)
        if step is PollStep.EXPIRED:
            self._expired()
            raise RetryableException(f"Promise expired/broken for request {self.request_id}")
        self._status_event(status, retry=False)
        if step is PollStep.FORGOTTEN:
            raise NotFoundError(
                f"{self.server} does not know {self.what} (HTTP 404): the server was "
                f"probably restarted, and the result is lost. {resume_hint(self.request_type)}",
                status_code=status,
                response=reply,
                body=body,
            )
        error = status_error(status, body, response=reply)
        raise ValueError(
            f"Error retrieving result: {error} with status code {status} "
            f"for request_id={self.request_id!r}"
        )

    def _billing_paused(self) -> bool:
        """On a 402: whether the billing pause window still runs (the first one logs why the
        result waits)."""
        now = self.clock()
        if self.billing_since is None:
            self.billing_since = now
            logger.warning(
                "%s at %s is paused for billing (HTTP 402: check the account's balance or "
                "limits); polling again every %.0f s for up to %.0f s",
                self.what,
                self.server,
                BILLING_PAUSE,
                self.limits.billing_pause,
            )
        return now - self.billing_since < self.limits.billing_pause

    def _result(self, body: Any) -> Any:
        if isinstance(body, dict) and body.get("type") == "try_again":
            logger.debug("request %s still pending (try_again)", self.request_id)
            if "queue_state" in body or "queue_state_reason" in body:
                self._report_queue_state(body)
            raise NotReady
        if isinstance(body, dict) and body.get("status") == "complete_metadata":
            if not self.allow_metadata_only:
                raise APIResponseValidationError(
                    f"{self.server} announced the result of {self.what} twice without sending it",
                    body=body,
                )
            self.allow_metadata_only = False
            logger.debug(
                "%s: %s bytes of result announced; fetching them",
                self.what,
                body.get("response_payload_size"),
            )
            raise NotReady
        if isinstance(body, dict) and "error" in body:
            raise self._failed(body)
        try:
            return self.structure(body)
        except Exception as exc:
            self.event("APIFuture.result_async.validation_error", "ERROR", exception=str(exc))
            raise APIResponseValidationError(
                f"The result of {self.what} from {self.server} does not match "
                f"{self.type_name}: {exc}",
                body=body,
            ) from exc

    def _status_event(self, status: int, *, retry: bool) -> None:
        self.event(
            "APIFuture.result_async.api_status_error",
            "WARNING" if retry else "ERROR",
            status_code=status,
            should_retry=retry,
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
            f"{self.what} failed: {body['error']}",
            request_id=self.request_id,
            category=category,
        )

    def _report_queue_state(self, body: Any) -> None:
        state = QueueState.parse(body.get("queue_state") if isinstance(body, dict) else None)
        if self.metrics is not None:
            self.metrics.queue_state(state.value)
        if self.observer is None:
            return
        reason = body.get("queue_state_reason") if isinstance(body, dict) else None
        try:
            passing = reason_passing(type(self.observer)) if isinstance(reason, str) else None
            if passing == "keyword":
                self.observer.on_queue_state_change(state, queue_state_reason=reason)
            elif passing == "positional":
                self.observer.on_queue_state_change(state, reason)
            else:  # an observer written for 0.5.1 takes the state only
                self.observer.on_queue_state_change(state)
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
                "request %s (%s) still pending after %.0fs and %d polls (it fails after %.0fs)",
                self.request_id,
                self.request_type,
                waited,
                self.iteration,
                self.limits.deadline,
            )


class Poller:
    """Resolves server-side futures by long polls, at most `max_workers` at a time.

    Every pending future waits as one entry in the pool's queue; a worker sends its next poll
    and puts it back (at once when not ready, later after a 429 or no answer), so the thread
    count never depends on the number of pending futures. `server` names the service in
    errors and log lines; `limits` bounds every future.
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
        server: str = "the server",
        limits: PollLimits | None = None,
        metrics: ClientMetrics | None = None,
    ) -> None:
        self._send = send
        self.metrics = metrics
        self._before_wait = before_wait
        self._clock = clock
        self._on_event = on_event
        self._executor = executor or RetryExecutor()
        self.server = server
        self.limits = limits or PollLimits()
        # Set when the server enables the batch poller: futures tracked with a batch target
        # wait for their completion there before their payload is polled.
        self.batch_send: BatchSender | None = None
        # Set when the server enables cancel_future: called with the request id of every
        # sample whose future was cancelled or still pending when the poller closed.
        self.cancel: Callable[[str], None] | None = None
        # Set on a 0.38 server: the budget of result bytes announced by the batch poller and
        # not yet fetched (a payload poll waits while it is overdrawn).
        self.response_bytes: InFlightLimit | None = None
        self._watchers: dict[BatchTarget, CompletionWatcher] = {}
        self.pool = WorkerPool(max_workers, name=name)
        self._lock = threading.Lock()
        self._jobs: dict[concurrent.futures.Future[Any], PollJob] = {}
        self._closed = False
        self._last_unreachable_notice: float | None = None

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
        accept: Mapping[str, str] | None = None,
        batch: BatchTarget | None = None,
    ) -> APIFuture[Any]:
        """Start polling `request_id`; the future resolves to `structure(result body)`.
        `accept`: extra headers of its polls (the result formats the client takes); `batch`:
        the batch-poller target whose completions announce this future (when enabled).

        `submitted_at` (same clock as the poller, time.monotonic by default) is when the client
        operation started; the first poll reports the round trip since then, and the future's
        deadline counts from then.
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
            server=self.server,
            limits=self.limits,
            on_unreachable=self._unreachable,
            submitted_at=submitted_at,
            metrics=self.metrics,
            accept=accept or {},
        )
        with self._lock:
            closed = self._closed
            if not closed:
                self._jobs[future] = job
        if closed:
            reject(future, ClientClosedError(f"the client was closed; {job.what} is not polled"))
            return future
        future.add_done_callback(self._forget)
        if batch is not None and self.batch_send is not None:
            self._watcher(batch).wait(job)
        else:
            self._start(job)
        return future

    def poll_once(self, job: PollJob) -> Any:
        """Send one poll for `job`: its result, or NotReady / the final error raised."""
        job.check_bounds()
        try:
            reply = self._send(job.request_id, job.headers(), job.allow_metadata_only)
        finally:
            job.iteration += 1
        return job.outcome(reply)

    def _start(self, job: PollJob) -> None:
        self._executor.submit(job, self.poll_once, pool=self.pool, into=job.future)

    def _fetch(self, job: PollJob, size: int | None) -> None:
        """Poll the payload of a completion the batch poller announced with its `size`: it
        holds that many bytes of the response budget until the result is decoded."""
        if self.response_bytes is None or not size:
            self._start(job)
            return
        self.response_bytes.run(functools.partial(self._started, job), weight=size)

    def _started(self, job: PollJob) -> APIFuture[Any]:
        self._start(job)
        return job.future

    def _watcher(self, target: BatchTarget) -> CompletionWatcher:
        """The batch poller of `target` (created on first use)."""
        assert self.batch_send is not None
        with self._lock:
            watcher = self._watchers.get(target)
            if watcher is None:
                watcher = CompletionWatcher(target, self.batch_send, self._fetch, self._run_batch)
                self._watchers[target] = watcher
        return watcher

    def _run_batch(self, watcher: CompletionWatcher) -> None:
        """Run a watcher's polls on the poll pool until it is idle."""
        self._executor.submit(watcher, watcher.poll_once, pool=self.pool)

    def _forget(self, future: concurrent.futures.Future[Any]) -> None:
        """Drop a settled future's job (its polls stop); an abandoned sample is cancelled."""
        with self._lock:
            job = self._jobs.pop(future, None)
        if job is not None and future.cancelled():
            self._abandoned(job)

    def _abandoned(self, job: PollJob) -> None:
        if self.cancel is not None and job.request_type == "Sample":
            self.cancel(job.request_id)

    def _unreachable(self, job: PollJob, error: Exception, silent_for: float) -> None:
        """Log, at most every 30 s for the whole poller, that the server does not answer."""
        now = self._clock()
        with self._lock:
            last = self._last_unreachable_notice
            if last is not None and now - last < UNREACHABLE_NOTICE:
                quiet = True
            else:
                quiet = False
                self._last_unreachable_notice = now
        level = logging.DEBUG if quiet else logging.WARNING
        logger.log(
            level,
            "no answer from %s to polls of %d pending requests for %.0fs (%s); polling again "
            "with back-off, they fail after %.0fs without an answer",
            self.server,
            self.pending,
            silent_for,
            error,
            self.limits.unreachable_after,
        )

    def resume_inherited(self) -> None:
        """In a forked child: poll again every future inherited from the parent."""
        for job in list(self._jobs.values()):
            if not job.future.done():
                self._start(job)

    def close(self, error: BaseException | None = None) -> None:
        """Stop polling; futures still pending fail with `error` (ClientClosedError)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            jobs = list(self._jobs.values())
        for job in jobs:
            if not job.future.done():
                self._abandoned(job)
            closed = ClientClosedError(f"the client was closed; {job.what} did not finish")
            reject(job.future, error or closed)
        self.pool.close(error)
        for watcher in list(self._watchers.values()):
            watcher.final_ack(FINAL_ACK_TIMEOUT)

    def _after_fork_in_child(self) -> None:
        """A fresh lock and pool (threads and locks of the parent are gone); jobs are kept (and
        polled one by one when resumed), batch watchers are rebuilt on first use."""
        self._lock = threading.Lock()
        self._watchers = {}
        self.pool._after_fork_in_child()
