"""Sample-level retries (PROTOCOL.md 10.4): resubmit a whole sample until it succeeds.

Each `execute(attempt)` call starts `attempt()` (which submits and polls, returning a future)
and, on a retryable failure, starts it again after `min(0.5 * 2**n, 10)` s +-25 %, without an
attempt cap. What bounds it is progress: once no request of this handler has succeeded for
`progress_timeout` seconds, every request in flight fails with APIConnectionError("No progress
made in ..."). Retries and the watchdog run on the runtime's timer thread, never on a thread of
their own, and at most `max_connections` calls run at once (the rest queue without blocking).
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import attrs

from tinker._futures import APIFuture, reject, resolve
from tinker._retry import RetryConfig
from tinker._throttle import Scheduler

__all__ = ["SampleRetryHandler"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

_handlers: weakref.WeakSet[SampleRetryHandler] = weakref.WeakSet()


def _reset_handlers_after_fork() -> None:
    for handler in list(_handlers):
        handler._after_fork_in_child()


os.register_at_fork(after_in_child=_reset_handlers_after_fork)


@attrs.define(eq=False)
class _Call(Generic[T]):
    out: APIFuture[T]
    attempt: Callable[[], concurrent.futures.Future[T]]
    tries: int = 0
    current: concurrent.futures.Future[T] | None = None


class SampleRetryHandler:
    """Runs sample attempts with retries, a concurrency bound and a progress watchdog.

    `timers.call_later(delay, fn)` runs a short callback later: a Runtime (whose timer thread
    survives fork) or a `Timers`.
    """

    def __init__(
        self,
        config: RetryConfig,
        *,
        timers: Scheduler,
        clock: Callable[[], float] = time.monotonic,
        name: str = "sampler",
    ) -> None:
        self.config = config
        self._timers = timers
        self._clock = clock
        self._name = name
        self._backoff = config.backoff()
        self._lock = threading.Lock()
        self._in_flight: set[_Call[Any]] = set()
        self._waiting: collections.deque[_Call[Any]] = collections.deque()
        self._last_progress = clock()
        self._watchdog_armed = False
        _handlers.add(self)

    def _after_fork_in_child(self) -> None:
        """New lock (a vanished parent thread may hold the old one); the watchdog's timer
        thread is gone, so the next admitted call arms it again."""
        self._lock = threading.Lock()
        self._watchdog_armed = False

    @property
    def in_flight(self) -> int:
        """Calls started and not yet finished."""
        return len(self._in_flight)

    def execute(self, attempt: Callable[[], concurrent.futures.Future[T]]) -> APIFuture[T]:
        """Run `attempt()` (non-blocking, returns a future) with retries; a future of its value."""
        call: _Call[T] = _Call(out=APIFuture(), attempt=attempt)
        with self._lock:
            if len(self._in_flight) >= self.config.max_connections:
                self._waiting.append(call)
                return call.out
            arm = self._admit(call)
        if arm:
            self._timers.call_later(self.config.progress_timeout, self._watchdog)
        self._start(call)
        return call.out

    def _admit(self, call: _Call[Any]) -> bool:
        """Under the lock: count `call` in flight (a start from idle counts as progress).

        True when the caller must arm the watchdog (after releasing the lock).
        """
        if not self._in_flight:
            self._last_progress = self._clock()
        self._in_flight.add(call)
        if self.config.progress_timeout > 0 and not self._watchdog_armed:
            self._watchdog_armed = True
            return True
        return False

    def _start(self, call: _Call[Any]) -> None:
        if call.out.done():
            self._finish(call)
            return
        try:
            current = call.attempt()
        except BaseException as exc:
            self._failed(call, exc)
            return
        call.current = current
        current.add_done_callback(lambda done: self._attempt_done(call, done))

    def _attempt_done(self, call: _Call[Any], done: concurrent.futures.Future[Any]) -> None:
        if done.cancelled():
            self._finish(call)
            return
        exc = done.exception()
        if exc is None:
            with self._lock:
                self._last_progress = self._clock()
            resolve(call.out, done.result())
            self._finish(call)
        else:
            self._failed(call, exc)

    def _failed(self, call: _Call[Any], exc: BaseException) -> None:
        if call.out.done() or not self.config.is_retryable(exc):
            reject(call.out, exc)
            self._finish(call)
            return
        delay = self._backoff.delay(call.tries)
        call.tries += 1
        logger.log(
            logging.WARNING if call.tries > 2 else logging.DEBUG,
            "%s: sample attempt %d failed (%s: %s); retrying in %.2fs",
            self._name,
            call.tries,
            type(exc).__name__,
            exc,
            delay,
        )
        self._timers.call_later(delay, lambda: self._start(call))

    def _finish(self, call: _Call[Any]) -> None:
        with self._lock:
            self._in_flight.discard(call)
            ready: list[_Call[Any]] = []
            arm = False
            while self._waiting and len(self._in_flight) < self.config.max_connections:
                waiting = self._waiting.popleft()
                arm = self._admit(waiting) or arm
                ready.append(waiting)
        if arm:
            self._timers.call_later(self.config.progress_timeout, self._watchdog)
        for waiting in ready:
            self._start(waiting)

    def _watchdog(self) -> None:
        timeout = self.config.progress_timeout
        with self._lock:
            idle_for = self._clock() - self._last_progress
            if not self._in_flight:
                self._watchdog_armed = False
                return
            stuck = [] if idle_for <= timeout else list(self._in_flight)
            self._watchdog_armed = not stuck
        if not stuck:
            self._timers.call_later(timeout - idle_for, self._watchdog)
            return
        logger.error(
            "%s: no sample finished for %.0fs; failing %d requests in flight",
            self._name,
            idle_for,
            len(stuck),
        )
        for call in stuck:
            reject(call.out, self.config.stuck_error())
            if call.current is not None:
                call.current.cancel()
            self._finish(call)
