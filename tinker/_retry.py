"""Retry policies as values, and the one executor that runs the attempts of every call.

A policy says which failures earn another attempt and how long to pause first; for each call it
makes a fresh `Attempts` state that decides after every failure. `RetryExecutor` runs the
attempts in one of three ways, which differ only in where a pause waits:

- `call`: in the calling thread, which sleeps (the caller's own thread, or one kept for
  blocking work: the blocking pool, the heartbeat and telemetry threads);
- `submit`: each attempt on a worker of a pool; a pause is a delayed entry in the pool's queue,
  so no thread waits (training and sampling submits, polls);
- `chain`: attempts that return futures (a whole sample); a pause is a timer.

The policies:
- `RetryPolicy` (TRANSPORT, SUBMIT, NO_RETRY, SAMPLE_SUBMIT): the transport layer retries one
  HTTP call after a connection lost on the way (not one refused: nothing listens there) or a
  408/409/429/5xx answer (or whatever `x-should-retry` says) up to `max_retries` times,
  pausing for the server's `retry-after-ms`/`retry-after` when it lies in (0, 60] s, else
  `min(0.5 * 2**n, 10)` s shortened by up to 25 %; its attempts share one idempotency key.
  With `deadline_layer`, a call whose transport attempts all failed starts over with a new key
  after `min(2**a, 30)` s, until `deadline` (the client's `submit_retry_seconds`, 300 by
  default) has passed since the first attempt, or, after a request that got no answer, since
  the server stopped answering any request (so the calls queued behind one that gave up on a
  dead server give up at their first unanswered attempt, not one deadline after another).
- `RetryConfig` (public, one per SamplingClient): a whole sample is submitted again after a
  retryable failure (connection errors, expired promises, 408/409/429/5xx) after
  `min(0.5 * 2**n, 10)` s +-25 %, with no attempt cap (a progress timeout bounds it, see
  tinker._limits); an HTTP 429 on the submit instead backs every sampler of the session off and
  resubmits once that pause is over.
- Polling (tinker._poller): a result that is not ready is polled again at once; a 429 or a
  connection error pauses `min(2**k, 30)` s (POLL_BACKOFF).

Clocks and random numbers are passed in, so tests drive them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

import attrs

from tinker._futures import APIFuture, reject, resolve
from tinker._transport import is_unreachable, new_idempotency_key
from tinker._workers import ClientClosedError, Pauses, Scheduler
from tinker.errors import APIConnectionError, APIStatusError, RateLimitError
from tinker.lib.retryable_exception import RetryableException
from tinker.metrics import ClientMetrics

__all__ = [
    "NO_RETRY",
    "POLL_BACKOFF",
    "SAMPLE_SUBMIT",
    "SUBMIT",
    "SUBMIT_BACKOFF",
    "TRANSPORT",
    "TRANSPORT_BACKOFF",
    "Attempts",
    "Backoff",
    "CallAttempts",
    "RetryConfig",
    "RetryEnv",
    "RetryExecutor",
    "RetryPolicy",
    "SampleAttempts",
    "is_retryable_status",
    "new_idempotency_key",
    "retry_after_seconds",
    "should_retry_response",
]

logger = logging.getLogger(__name__)
# The transport layer's retries log under their own name (they are the common, quiet kind).
transport_logger = logging.getLogger(f"{__name__}.transport")
T = TypeVar("T")

# Status codes that the transport and submit layers retry (plus every status >= 500).
RETRYABLE_STATUSES = frozenset({408, 409, 429})
# A server-provided Retry-After is used exactly when it lies in (0, MAX_RETRY_AFTER] seconds.
MAX_RETRY_AFTER = 60.0


@attrs.frozen
class Backoff:
    """Exponential backoff: `min(initial * 2**n, maximum)` with optional jitter.

    `jitter` is a fraction. One-sided jitter (the transport layer) only shortens the delay by up
    to that fraction; symmetric jitter (the sample layer) moves it either way and clamps the
    result to [0, maximum].
    """

    initial: float
    maximum: float
    jitter: float = 0.0
    symmetric: bool = False

    def nominal(self, n: int) -> float:
        """The delay before retry `n` (0-based) without jitter."""
        return min(self.initial * 2.0 ** min(n, 64), self.maximum)

    def delay(self, n: int, uniform: Callable[[], float] = random.random) -> float:
        """The delay before retry `n` (0-based), with jitter drawn from `uniform()` in [0, 1)."""
        base = self.nominal(n)
        if not self.jitter:
            return base
        if self.symmetric:
            return min(max(base + base * self.jitter * (2.0 * uniform() - 1.0), 0.0), self.maximum)
        return base * (1.0 - self.jitter * uniform())


TRANSPORT_BACKOFF = Backoff(initial=0.5, maximum=10.0, jitter=0.25)
SUBMIT_BACKOFF = Backoff(initial=1.0, maximum=30.0)
# Polling backs off on connection errors exactly like the submit layer: 1, 2, 4, ... 30 s.
POLL_BACKOFF = SUBMIT_BACKOFF
# Pause between attempts of a submit or poll answered 402 (billing paused) within its window.
BILLING_PAUSE = 5.0
# Polls answered 400 in a row that are retried before the future fails.
MAX_BAD_REQUESTS = 3


def is_retryable_status(status_code: int, *, retry_429: bool = True) -> bool:
    """408, 409, 429 (unless excluded) and every 5xx are worth another attempt."""
    if status_code == 429:
        return retry_429
    return status_code in RETRYABLE_STATUSES or status_code >= 500


def should_retry_response(status_code: int, headers: Mapping[str, str]) -> bool:
    """Transport-layer decision for an error response; `x-should-retry` overrides the status."""
    override = headers.get("x-should-retry")
    if override == "true":
        return True
    if override == "false":
        return False
    return is_retryable_status(status_code)


def retry_after_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """The server's requested delay (`retry-after-ms`, else `retry-after`) if in (0, 60] s.

    `retry-after` may be seconds or an HTTP date; `now` is the wall-clock time (time.time()).
    """
    seconds: float | None = None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            seconds = float(raw_ms) / 1000.0
        except ValueError:
            seconds = None
    if seconds is None:
        raw = headers.get("retry-after")
        if raw is not None:
            try:
                seconds = float(raw)
            except ValueError:
                try:
                    seconds = email.utils.parsedate_to_datetime(raw).timestamp() - now
                except (TypeError, ValueError, IndexError, OverflowError):
                    seconds = None
    if seconds is not None and 0.0 < seconds <= MAX_RETRY_AFTER:
        return seconds
    return None


class Attempts(Protocol):
    """The retry state of one call: after each failed attempt, whether and when to try again."""

    def pause_after(self, error: Exception) -> float | None:
        """Seconds to pause before the next attempt, or None to give up (`error` is raised)."""
        ...


A = TypeVar("A", bound=Attempts)

# Hears of every failed attempt of a deadline-layer call: (error, attempt, elapsed, will_retry).
FailureReport = Callable[[BaseException, int, float, bool], None]


@attrs.frozen
class RetryEnv:
    """What policies take from their surroundings: clocks, randomness, the client's defaults."""

    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    uniform: Callable[[], float] = random.random
    max_retries: int = 10
    deadline: float = 300.0
    on_failure: FailureReport | None = None
    silent_since: Callable[[], float | None] = attrs.field(default=lambda: None)


@attrs.frozen
class RetryPolicy:
    """How one call retries.

    `max_retries` bounds the transport layer (None: the client's `max_retries`, 10 by default).
    With `deadline_layer`, the whole call is retried on connection errors and 408/409/429/5xx
    (429 only if `retry_429`) with `min(2**a, 30)` s pauses until `deadline` seconds (None: the
    client's `submit_retry_seconds`, 300 by default) have passed since the first attempt.
    """

    max_retries: int | None = None
    deadline_layer: bool = False
    deadline: float | None = None
    retry_429: bool = True

    def is_retryable(self, exc: BaseException) -> bool:
        """Whether the deadline layer retries after `exc`."""
        if isinstance(exc, APIStatusError):
            return is_retryable_status(exc.status_code, retry_429=self.retry_429)
        return isinstance(exc, (APIConnectionError, TimeoutError))

    def attempts(self, env: RetryEnv, what: str) -> CallAttempts:
        """The retry state of one call (`what` names it in log lines, e.g. "POST /api/v1/x")."""
        return CallAttempts(self, env, what)


# Transport retries only: create_session, create_model, create_sampling_session.
TRANSPORT = RetryPolicy()
# Transport retries inside the 5-minute layer: training submits, get_info, REST calls.
SUBMIT = RetryPolicy(deadline_layer=True)
# One attempt: heartbeats and polls.
NO_RETRY = RetryPolicy(max_retries=0)
# The asample submit: one attempt per try, 5-minute layer, 429 left to the sample-level policy.
SAMPLE_SUBMIT = RetryPolicy(max_retries=0, deadline_layer=True, retry_429=False)


class CallAttempts:
    """The state of one call under a RetryPolicy: transport attempts inside the deadline layer.

    `retry_count` (the attempt within the current round) and `idempotency_key` go on the wire
    with every attempt.
    """

    def __init__(self, policy: RetryPolicy, env: RetryEnv, what: str) -> None:
        self._policy = policy
        self._env = env
        self._what = what
        self._max_retries = env.max_retries if policy.max_retries is None else policy.max_retries
        self._deadline = policy.deadline or env.deadline
        self._started = env.clock()
        self._round = 0
        self.retry_count = 0
        self.idempotency_key = new_idempotency_key()
        self._billing_notice: float | None = None

    def pause_after(self, error: Exception) -> float | None:
        """The transport layer's pause while it has retries left, then the deadline layer's."""
        if self.retry_count < self._max_retries and _transport_retryable(error):
            return self._transport_pause(error)
        if not self._policy.deadline_layer:
            return None
        now = self._env.clock()
        elapsed = now - self._started
        silent_since = self._env.silent_since()
        if isinstance(error, APIConnectionError) and silent_since is not None:
            elapsed = max(elapsed, now - silent_since)
        if isinstance(error, APIStatusError) and error.status_code == 402:
            return self._billing_pause(elapsed)
        will_retry = self._policy.is_retryable(error) and elapsed < self._deadline
        if self._env.on_failure is not None:
            self._env.on_failure(error, self._round + 1, elapsed, will_retry)
        if not will_retry:
            return None
        delay = min(SUBMIT_BACKOFF.delay(self._round), self._deadline - elapsed)
        logger.warning(
            "%s failed (%s: %s); retry %d in %.1fs (giving up %.0fs after the first attempt)",
            self._what,
            type(error).__name__,
            error,
            self._round + 1,
            delay,
            self._deadline,
        )
        self._round += 1
        self.retry_count = 0
        self.idempotency_key = new_idempotency_key()
        return delay

    def _billing_pause(self, elapsed: float) -> float | None:
        """HTTP 402 (billing paused): try again every 5 s within the deadline, saying why at
        most once a minute."""
        if elapsed >= self._deadline:
            return None
        now = self._env.clock()
        if self._billing_notice is None or now - self._billing_notice >= 60.0:
            self._billing_notice = now
            logger.warning(
                "%s is paused: the account's billing status does not allow it now (HTTP 402); "
                "trying again every %.0fs (giving up %.0fs after the first attempt)",
                self._what,
                BILLING_PAUSE,
                self._deadline,
            )
        return min(BILLING_PAUSE, self._deadline - elapsed)

    def _transport_pause(self, error: Exception) -> float:
        response = getattr(error, "response", None)
        server_delay = None
        if response is not None:
            server_delay = retry_after_seconds(response.headers, self._env.wall_clock())
        if server_delay is None:
            delay = TRANSPORT_BACKOFF.delay(self.retry_count, self._env.uniform)
        else:
            delay = server_delay
        if isinstance(error, APIStatusError):
            reason = f"HTTP {error.status_code}"
        else:
            reason = type(error).__name__
        self.retry_count += 1
        transport_logger.info(
            "%s failed (%s); retry %d of %d in %.2fs",
            self._what,
            reason,
            self.retry_count,
            self._max_retries,
            delay,
        )
        return delay


def _transport_retryable(error: Exception) -> bool:
    """An answer lost on the way, or an error status that the transport layer retries. A
    connection that could not be made at all (nothing listens there) is left to the deadline
    layer: a call without one fails at once, naming the URL."""
    if isinstance(error, APIConnectionError):
        return not is_unreachable(error)
    response = getattr(error, "response", None)
    if isinstance(error, APIStatusError) and response is not None:
        return should_retry_response(error.status_code, response.headers)
    return False


def _default_retryable_exceptions() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = [asyncio.TimeoutError, TimeoutError]
    kinds += [APIConnectionError, RetryableException]
    return tuple(dict.fromkeys(kinds))  # the two TimeoutErrors are one class from 3.11


def _positive_int_or_none(
    _instance: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
        raise ValueError(f"{attribute.name} must be an int > 0 or None, got {value!r}")


def _bool(_instance: object, attribute: attrs.Attribute[bool], value: bool) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{attribute.name} must be a bool, got {type(value).__name__}")


def _non_negative(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen
class RetryConfig:
    """Sample-level retries: no attempt cap, a progress timeout instead (hashable value).

    `max_connections=None` lets every sample run at once; `enable_stuck_detection=False` turns
    the progress timeout off."""

    max_connections: int | None = attrs.field(default=1000, validator=_positive_int_or_none)
    progress_timeout: float = attrs.field(default=1800.0, validator=_non_negative)
    retry_delay_base: float = attrs.field(default=0.5, validator=_non_negative)
    retry_delay_max: float = attrs.field(default=10.0, validator=_non_negative)
    jitter_factor: float = attrs.field(default=0.25, validator=_non_negative)
    enable_retry_logic: bool = True
    enable_stuck_detection: bool = attrs.field(default=True, validator=_bool)
    retryable_exceptions: tuple[type[BaseException], ...] = attrs.field(
        factory=_default_retryable_exceptions, converter=tuple
    )

    def backoff(self) -> Backoff:
        """The delay schedule: base * 2**(attempt-1), capped, with symmetric jitter."""
        return Backoff(
            initial=self.retry_delay_base,
            maximum=self.retry_delay_max,
            jitter=self.jitter_factor,
            symmetric=True,
        )

    def is_retryable(self, exc: BaseException) -> bool:
        """Retry the configured exception types and 408/409/429/5xx status errors."""
        if not self.enable_retry_logic:
            return False
        if isinstance(exc, APIStatusError):
            return is_retryable_status(exc.status_code)
        return isinstance(exc, self.retryable_exceptions)

    def stuck_error(self) -> APIConnectionError:
        """The error raised when no request made progress for `progress_timeout` seconds."""
        return APIConnectionError(
            f"No progress made in {float(self.progress_timeout)}s. Requests appear to be stuck."
        )


class SampleAttempts:
    """The state of one sample under its RetryConfig (see the module docstring);
    `on_rate_limited` starts the shared 429 back-off."""

    def __init__(
        self, config: RetryConfig, *, name: str, on_rate_limited: Callable[[], None] | None
    ) -> None:
        self._config = config
        self._name = name
        self._on_rate_limited = on_rate_limited
        self._backoff = config.backoff()
        self._tries = 0
        self._rate_limited = 0

    def pause_after(self, error: Exception) -> float | None:
        """No pause after a 429 on submit (the shared back-off holds the resubmit), a
        jittered backoff after another retryable failure, None otherwise."""
        if self._on_rate_limited is not None and isinstance(error, RateLimitError):
            self._on_rate_limited()
            self._rate_limited += 1
            level = logging.WARNING if self._rate_limited % 20 == 0 else logging.DEBUG
            logger.log(level, "asample got HTTP 429 (%d in a row); backing off", self._rate_limited)
            return 0.0
        self._rate_limited = 0
        if not self._config.is_retryable(error):
            return None
        delay = self._backoff.delay(self._tries)
        self._tries += 1
        logger.log(
            logging.WARNING if self._tries > 2 else logging.DEBUG,
            "%s: sample attempt %d failed (%s: %s); retrying in %.2fs",
            self._name,
            self._tries,
            type(error).__name__,
            error,
            delay,
        )
        return delay


class RetryExecutor:
    """Runs the attempts of a call under its `Attempts` state; see the module docstring.

    `sleep` pauses `call` (it may raise to stop: the client closed); `timers` runs the pauses
    of `chain`; `pauses` says how a pause of `submit` and `chain` passes. Once `stopped()` is
    true (the client closed) a failed attempt is never retried: the call fails with
    ClientClosedError, and its policy is not consulted (so nothing logs a retry).
    """

    def __init__(
        self,
        *,
        sleep: Callable[[float], None] = time.sleep,
        timers: Scheduler | None = None,
        pauses: Pauses | None = None,
        stopped: Callable[[], bool] | None = None,
        metrics: ClientMetrics | None = None,
    ) -> None:
        self._sleep = sleep
        self._timers = timers
        self._pauses = pauses or Pauses()
        self._stopped = stopped or _never
        self._metrics = metrics

    def call(self, attempts: A, attempt: Callable[[A], T]) -> T:
        """Run the attempts in this thread and return the first success (or raise)."""
        while True:
            try:
                return attempt(attempts)
            except Exception as exc:
                if self._stopped():
                    raise ClientClosedError("the client was closed during this call") from exc
                pause = attempts.pause_after(exc)
                if pause is None:
                    raise
                if self._metrics is not None:
                    self._metrics.retried(exc)
            self._sleep(pause)

    def submit(
        self,
        attempts: A,
        attempt: Callable[[A], T],
        *,
        pool: Scheduler,
        into: APIFuture[T] | None = None,
    ) -> APIFuture[T]:
        """Run each attempt on a worker of `pool`; a future of the first success.

        Pauses wait in the pool's queue. A future cancelled by its owner stops the retries;
        a closed pool fails it with ClientClosedError.
        """
        out: APIFuture[T] = into if into is not None else APIFuture()
        run = _PooledRun(attempts, attempt, out, pool, self._pauses, self._stopped, self._metrics)
        if not pool.call_later(0.0, run.step, run.dropped):
            reject(out, ClientClosedError("this client has been closed"))
        return out

    def chain(
        self, attempts: A, start: Callable[[A], concurrent.futures.Future[T]], *, into: APIFuture[T]
    ) -> APIFuture[T]:
        """Start attempts that return futures (the first one now); `into` gets the first
        success. Pauses are timers; an `into` settled by someone else stops the retries."""
        if self._timers is None:
            raise RuntimeError("chain needs an executor with timers")
        _ChainedRun(
            attempts, start, into, self._timers, self._pauses, self._stopped, self._metrics
        ).step()
        return into


def _never() -> bool:
    return False


class _Run(Generic[A, T]):
    """The retries of one call in flight: one small object per call (not a web of closures),
    so that thousands of calls in flight stay cheap to hold and to garbage-collect."""

    __slots__ = ("attempt", "attempts", "metrics", "out", "pauses", "scheduler", "stopped")

    def __init__(
        self,
        attempts: A,
        attempt: Callable[[A], Any],
        out: APIFuture[T],
        scheduler: Scheduler,
        pauses: Pauses,
        stopped: Callable[[], bool],
        metrics: ClientMetrics | None,
    ) -> None:
        self.metrics = metrics
        self.attempts = attempts
        self.attempt = attempt
        self.out = out
        self.scheduler = scheduler
        self.pauses = pauses
        self.stopped = stopped

    def step(self) -> None:
        """Make the next attempt."""
        raise NotImplementedError

    def dropped(self, reason: BaseException) -> None:
        """The scheduler closed before the next attempt."""
        reject(self.out, reason)

    def failed(self, error: Exception) -> None:
        """Schedule the next attempt after the policy's pause, or fail the call for good."""
        if self.stopped():
            reject(self.out, ClientClosedError("the client was closed during this request"))
            return
        try:
            pause = self.attempts.pause_after(error)
        except Exception as exc:  # a bug in a policy must fail the call, not lose it
            logger.exception("retry policy failed on %s", type(error).__name__)
            reject(self.out, exc)
            return
        if pause is None:
            reject(self.out, error)
            return
        if self.metrics is not None:
            self.metrics.retried(error)
        if not self.pauses.later(self.scheduler, pause, self.step, self.dropped):
            reject(self.out, ClientClosedError("the client was closed while the request waited"))


class _PooledRun(_Run[A, T]):
    """Attempts that block, each run on a worker of the scheduler (a pool)."""

    __slots__ = ()

    def step(self) -> None:
        if self.out.done():  # cancelled by its owner
            return
        try:
            value = self.attempt(self.attempts)
        except Exception as exc:
            self.failed(exc)
        except BaseException as exc:
            reject(self.out, exc)
        else:
            resolve(self.out, value)


class _ChainedRun(_Run[A, T]):
    """Attempts that return futures; pauses on the scheduler (the timers)."""

    __slots__ = ()

    def step(self) -> None:
        if self.out.done():
            return
        try:
            current = self.attempt(self.attempts)
        except Exception as exc:
            self.failed(exc)
            return
        current.add_done_callback(self.finished)

    def finished(self, done: concurrent.futures.Future[Any]) -> None:
        if self.out.done() or done.cancelled():
            return
        exc = done.exception()
        if exc is None:
            resolve(self.out, done.result())
        elif isinstance(exc, Exception):
            self.failed(exc)
        else:
            reject(self.out, exc)
