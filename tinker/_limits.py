"""Flow control of sampling: bounds on what is in flight, the shared 429 back-off, progress.

- `InFlightLimit`: at most N operations at once; the others wait in a FIFO queue, holding no
  thread, and start as slots free up.
- `SampleLimiter` (one per session): at most `max_sample_submits` asample submits at once, and
  none while the shared back-off runs: an HTTP 429 on any asample moves it one second ahead for
  every sampler of the session. The wait passes on the timer thread, re-checked at least every
  second (another 429 may extend it meanwhile).
- `ProgressWatchdog`: fails every sample in flight once none has succeeded for
  `progress_timeout` seconds.
- `SampleRetries` (one per SamplingClient): each sample runs under its RetryConfig, with at most
  `max_connections` in flight (None: no bound) and the watchdog over them (unless stuck
  detection is off).
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextvars
import functools
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from tinker._futures import (
    APIFuture,
    chain,
    failed,
    on_cancelled,
    reject,
    resolve,
    settle_from,
)
from tinker._retry import RetryConfig, RetryExecutor, SampleAttempts
from tinker._workers import ClientClosedError, Pauses, Scheduler
from tinker.errors import RateLimitError

__all__ = ["InFlightLimit", "ProgressWatchdog", "SampleLimiter", "SampleRetries", "SampleSeqIds"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

SAMPLE_BACKOFF_SECONDS = 1.0
# How often a queue that still has waiters logs that it does.
WAIT_LOG_INTERVAL = 30.0

Start = Callable[[], concurrent.futures.Future[Any]]

# The limit of an InFlightLimit that never makes anything wait.
UNBOUNDED = sys.maxsize


class InFlightLimit:
    """Runs at most `limit` operations at once; later ones wait in order, holding no thread.

    An operation holds its slot (`weight` units of the limit, 1 by default) from `start()`
    until the future it returned completes; the next one starts while fewer than `limit` units
    are held, so one heavier than what is left still goes (a byte budget of B is a limit of
    B + 1: a request goes while the budget is not overdrawn). With `timers`, a queue that has
    had waiters for 30 s says so in the log every 30 s.
    """

    def __init__(
        self,
        limit: int,
        *,
        what: str,
        timers: Scheduler | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError(f"the limit of {what} must be >= 1, got {limit}")
        self.limit = limit
        self._what = what
        self._timers = timers
        self._clock = clock
        self._lock = threading.Lock()
        self._waiting: collections.deque[tuple[Start, APIFuture[Any], float, int]] = (
            collections.deque()
        )
        self._running = 0
        self._pumping = False
        self._notice_armed = False

    @classmethod
    def byte_budget(
        cls, nbytes: int, *, what: str, timers: Scheduler | None = None
    ) -> InFlightLimit:
        """The limit of a byte budget: operations go while `nbytes` are not overdrawn (a limit
        of nbytes + 1, so that one larger than the whole budget still goes when alone)."""
        return cls(nbytes + 1, what=what, timers=timers)

    @property
    def in_flight(self) -> int:
        """Units held by the operations in flight."""
        return self._running

    @property
    def waiting(self) -> int:
        """Operations waiting for a slot."""
        return len(self._waiting)

    def run(self, start: Callable[[], APIFuture[T]], weight: int = 1) -> APIFuture[T]:
        """`start()`'s future when a slot is free now; else a future that follows it, called
        once a slot frees up."""
        with self._lock:
            free = not self._waiting and self._running < self.limit
            if free:
                self._running += weight
            else:
                out: APIFuture[T] = APIFuture()
                self._waiting.append((start, out, self._clock(), weight))
                arm = self._timers is not None and not self._notice_armed
                self._notice_armed = self._notice_armed or arm
        if free:
            return self._start_now(start, weight)
        if arm and self._timers is not None:
            self._timers.call_later(WAIT_LOG_INTERVAL, self._notice)
        self._pump()
        return out

    def _start_now(self, start: Callable[[], APIFuture[T]], weight: int) -> APIFuture[T]:
        try:
            current = start()
        except BaseException as exc:
            self._release(weight)
            return failed(exc)
        current.add_done_callback(functools.partial(self._released, weight))
        return current

    def _released(self, weight: int, _done: concurrent.futures.Future[Any]) -> None:
        self._release(weight)

    def _pump(self) -> None:
        """Start waiters while slots are free. One thread pumps at a time; a start that
        completes at once frees its slot for the same loop instead of recursing."""
        with self._lock:
            if self._pumping:
                return
            self._pumping = True
        while True:
            with self._lock:
                if not self._waiting or self._running >= self.limit:
                    self._pumping = False
                    return
                start, out, _, weight = self._waiting.popleft()
                self._running += weight
            self._start(start, out, weight)

    def _start(self, start: Start, out: APIFuture[Any], weight: int) -> None:
        if out.done():  # cancelled by its owner while it waited
            self._release(weight)
            return
        try:
            current = start()
        except BaseException as exc:
            reject(out, exc)
            self._release(weight)
            return
        current.add_done_callback(functools.partial(self._finished, out, weight))
        on_cancelled(out, current.cancel)

    def _finished(
        self, out: APIFuture[Any], weight: int, done: concurrent.futures.Future[Any]
    ) -> None:
        settle_from(out, done)
        self._release(weight)

    def _release(self, weight: int) -> None:
        with self._lock:
            self._running -= weight
        self._pump()

    def _notice(self) -> None:
        with self._lock:
            oldest = self._waiting[0][2] if self._waiting else None
            self._notice_armed = oldest is not None
        if oldest is None or self._timers is None:
            return
        logger.warning(
            "%d %s waiting for a free slot, the oldest for %.0fs (%d of %d in flight)",
            len(self._waiting),
            self._what,
            self._clock() - oldest,
            self._running,
            self.limit,
        )
        self._timers.call_later(WAIT_LOG_INTERVAL, self._notice)

    def fail_waiting(self, exc: BaseException) -> None:
        """Fail every operation still waiting for a slot (the client is closing); they never
        start."""
        with self._lock:
            waiting = list(self._waiting)
            self._waiting.clear()
        for _, out, _, _ in waiting:
            reject(out, exc)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._pumping = False
        self._notice_armed = False


class SampleLimiter:
    """The session's shared 429 back-off deadline plus a bound on asample submits in flight."""

    def __init__(
        self,
        max_in_flight: int = 400,
        *,
        backoff_seconds: float = SAMPLE_BACKOFF_SECONDS,
        timers: Scheduler,
        clock: Callable[[], float] = time.monotonic,
        pauses: Pauses | None = None,
    ) -> None:
        self.backoff_seconds = backoff_seconds
        self._slots = InFlightLimit(
            max_in_flight, what="sample submits", timers=timers, clock=clock
        )
        self._timers = timers
        self._clock = clock
        self._pauses = pauses or Pauses()
        self._lock = threading.Lock()
        self._backoff_until = 0.0

    @property
    def max_in_flight(self) -> int:
        """The most asample submits in flight at once."""
        return self._slots.limit

    @property
    def in_flight(self) -> int:
        """Submits holding a slot (waiting for the back-off to pass, or being sent)."""
        return self._slots.in_flight

    def back_off(self) -> None:
        """Record a 429: every sampler waits until now + 1 s before its next submit."""
        with self._lock:
            self._backoff_until = max(self._backoff_until, self._clock() + self.backoff_seconds)

    def backoff_remaining(self) -> float:
        """Seconds left in the shared back-off window (0 when none)."""
        with self._lock:
            return max(0.0, self._backoff_until - self._clock())

    def admit(self, start: Callable[[], APIFuture[T]]) -> APIFuture[T]:
        """Call `start()` (an asample submit) once a slot is free and the back-off is over."""
        return self._slots.run(functools.partial(self._after_backoff, start))

    def _after_backoff(self, start: Callable[[], APIFuture[T]]) -> APIFuture[T]:
        if self.backoff_remaining() <= 0.0:
            return start()
        return chain(self.window_passed(), lambda _: start())

    def window_passed(self) -> APIFuture[None]:
        """A future that resolves once the shared back-off is over (at once when there is none)."""
        out: APIFuture[None] = APIFuture()

        def check() -> None:
            remaining = self.backoff_remaining()
            if remaining <= 0.0:
                resolve(out, None)
                return
            logger.debug("sampling backs off after HTTP 429: %.2fs left", remaining)
            wait = min(remaining, self.backoff_seconds)
            if not self._pauses.later(self._timers, wait, check, lambda r: reject(out, r)):
                reject(out, ClientClosedError("the client was closed during a sampling back-off"))

        check()
        return out

    def fail_waiting(self, exc: BaseException) -> None:
        """Fail every submit still waiting for a slot (the client is closing)."""
        self._slots.fail_waiting(exc)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._slots._after_fork_in_child()


class ProgressWatchdog:
    """Fails every watched operation once none has succeeded for `timeout` seconds (0: off).

    Starting to watch while nothing is watched counts as progress; so does every success.
    """

    def __init__(
        self,
        timeout: float,
        *,
        timers: Scheduler,
        clock: Callable[[], float],
        error: Callable[[], BaseException],
        name: str,
    ) -> None:
        self._timeout = timeout
        self._timers = timers
        self._clock = clock
        self._error = error
        self._name = name
        self._lock = threading.Lock()
        self._watched: dict[APIFuture[Any], Callable[[], None]] = {}
        self._last_progress = clock()
        self._armed = False

    def watch(self, out: APIFuture[Any], cancel: Callable[[], None]) -> None:
        """Watch `out` until it completes; on a timeout it fails and `cancel()` is called."""
        with self._lock:
            if not self._watched:
                self._last_progress = self._clock()
            self._watched[out] = cancel
            arm = self._timeout > 0 and not self._armed
            self._armed = self._armed or arm
        if arm:
            self._timers.call_later(self._timeout, self._check)
        out.add_done_callback(self._done)

    def _done(self, out: concurrent.futures.Future[Any]) -> None:
        success = not out.cancelled() and out.exception() is None
        with self._lock:
            self._watched.pop(out, None)  # type: ignore[call-overload]
            if success:
                self._last_progress = self._clock()

    def _check(self) -> None:
        with self._lock:
            idle_for = self._clock() - self._last_progress
            if not self._watched:
                self._armed = False
                return
            stuck = [] if idle_for <= self._timeout else list(self._watched.items())
            self._armed = not stuck
        if not stuck:
            self._timers.call_later(self._timeout - idle_for, self._check)
            return
        logger.error(
            "%s: no sample finished for %.0fs; failing %d requests in flight",
            self._name,
            idle_for,
            len(stuck),
        )
        for out, cancel in stuck:
            reject(out, self._error())
            cancel()

    def _after_fork_in_child(self) -> None:
        """A new lock; the timer thread is gone, so the next watched operation re-arms."""
        self._lock = threading.Lock()
        self._armed = False


class SampleRetries:
    """Sample-level retries of one SamplingClient (see the module docstring)."""

    def __init__(
        self,
        config: RetryConfig,
        *,
        executor: RetryExecutor,
        timers: Scheduler,
        clock: Callable[[], float] = time.monotonic,
        on_rate_limited: Callable[[], None] | None = None,
        name: str = "sampler",
    ) -> None:
        self.config = config
        self._executor = executor
        self._name = name
        self._on_rate_limited = on_rate_limited
        self._limit = InFlightLimit(
            config.max_connections or UNBOUNDED,
            what=f"samples of {name}",
            timers=timers,
            clock=clock,
        )
        self._watchdog = ProgressWatchdog(
            config.progress_timeout if config.enable_stuck_detection else 0,
            timers=timers,
            clock=clock,
            error=config.stuck_error,
            name=name,
        )

    @property
    def in_flight(self) -> int:
        """Samples started and not yet finished."""
        return self._limit.in_flight

    def run(self, attempt: Callable[[], concurrent.futures.Future[T]]) -> APIFuture[T]:
        """Run `attempt()` (non-blocking: submit and poll one sample) until it succeeds or the
        policy gives up; a future of its value. Every attempt runs in the caller's context
        (the public method its requests are attributed to), whichever thread starts it."""
        in_context = functools.partial(_run_in, contextvars.copy_context(), attempt)
        return self._limit.run(functools.partial(self._retried, in_context))

    def _retried(self, attempt: Callable[[], concurrent.futures.Future[T]]) -> APIFuture[T]:
        out: APIFuture[T] = APIFuture()
        sample = _Sample(attempt)
        self._watchdog.watch(out, sample.cancel)
        on_cancelled(out, sample.cancel)
        attempts = SampleAttempts(
            self.config, name=self._name, on_rate_limited=self._on_rate_limited
        )
        return self._executor.chain(attempts, sample.start, into=out)

    def fail_waiting(self, exc: BaseException) -> None:
        """Fail every sample still waiting for a slot (the client is closing)."""
        self._limit.fail_waiting(exc)

    def _after_fork_in_child(self) -> None:
        self._limit._after_fork_in_child()
        self._watchdog._after_fork_in_child()


def _run_in(context: contextvars.Context, fn: Callable[[], T]) -> T:
    """`fn()` in a copy of `context` (a fresh copy each time, so runs may nest)."""
    return context.copy().run(fn)


class _Sample:
    """One sample's attempts: starts them and remembers the current one (to cancel it)."""

    __slots__ = ("attempt", "current")

    def __init__(self, attempt: Callable[[], concurrent.futures.Future[Any]]) -> None:
        self.attempt = attempt
        self.current: concurrent.futures.Future[Any] | None = None

    def start(self, _attempts: object) -> concurrent.futures.Future[Any]:
        self.current = self.attempt()
        return self.current

    def cancel(self) -> None:
        if self.current is not None:
            self.current.cancel()


class SampleSeqIds:
    """The seq_id of one sample across its attempts: in today's protocol a resubmit after an
    HTTP 429 keeps it (the server takes it for the same request), any other resubmit takes a
    new one from `next_seq_id`; in the 0.5.1 protocol (`keep_after_429` false) every attempt
    takes a new one."""

    __slots__ = ("_keep", "_keep_after_429", "_next", "value")

    def __init__(self, next_seq_id: Callable[[], int], *, keep_after_429: bool) -> None:
        self._next = next_seq_id
        self._keep_after_429 = keep_after_429
        self._keep = False
        self.value: int | None = None

    def take(self) -> int:
        """The seq_id of the attempt about to be sent."""
        if self.value is None or not self._keep:
            self.value = self._next()
        self._keep = False
        return self.value

    def attempt_done(self, attempt: concurrent.futures.Future[Any]) -> None:
        """Note how an attempt ended (a done-callback of its future)."""
        if self._keep_after_429 and not attempt.cancelled():
            self._keep = isinstance(attempt.exception(), RateLimitError)
