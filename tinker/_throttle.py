"""Flow control shared by a Runtime: the sampling back-off window, in-flight limits, timers.

`SampleLimiter` implements PROTOCOL.md 7.3: a 429 on any asample pushes a shared deadline one
second ahead, and every sampler waits for it before its next submit; at most `max_in_flight`
submits run at once. `Timers` runs short callbacks at given times on one thread, so delayed
retries never cost a thread each.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

from tinker.errors import RateLimitError

__all__ = ["SampleLimiter", "Scheduler", "Timers"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

SAMPLE_BACKOFF_SECONDS = 1.0
# A waiter that has not got what it waits for logs a line this often.
WAIT_LOG_INTERVAL = 30.0


class SampleLimiter:
    """A shared 429 back-off deadline plus a bound on asample submits in flight."""

    def __init__(
        self,
        max_in_flight: int = 400,
        *,
        backoff_seconds: float = SAMPLE_BACKOFF_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        self.max_in_flight = max_in_flight
        self.backoff_seconds = backoff_seconds
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._backoff_until = 0.0
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        """Submits currently holding a slot."""
        return self._in_flight

    def back_off(self) -> None:
        """Record a 429: every sampler waits until now + 1 s before its next submit."""
        with self._lock:
            self._backoff_until = max(self._backoff_until, self._clock() + self.backoff_seconds)

    def backoff_remaining(self) -> float:
        """Seconds left in the shared back-off window (0 when none)."""
        with self._lock:
            return max(0.0, self._backoff_until - self._clock())

    def wait_for_turn(self) -> None:
        """Sleep, in steps of at most 1 s, until the shared back-off window has passed."""
        while True:
            remaining = self.backoff_remaining()
            if remaining <= 0.0:
                return
            logger.debug("sampling backs off after HTTP 429: %.2fs left", remaining)
            self._sleep(min(remaining, self.backoff_seconds))

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the `max_in_flight` submit slots (logs while it has to wait)."""
        waited = 0.0
        while not self._slots.acquire(timeout=WAIT_LOG_INTERVAL):
            waited += WAIT_LOG_INTERVAL
            logger.warning(
                "a sample submit has waited %.0fs for a free slot (%d submits in flight)",
                waited,
                self._in_flight,
            )
        with self._lock:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
            self._slots.release()

    def submit(self, attempt: Callable[[], T]) -> T:
        """Run an asample submit under the limiter; on 429 back off for all and resubmit.

        `attempt` is called again for every resubmit, so it must build a new request (a new
        sampling seq_id). The loop has no attempt cap (the protocol's rule); each 429 is logged
        and a stop (client closed) comes from `sleep` raising.
        """
        rate_limited = 0
        while True:
            with self.slot():
                self.wait_for_turn()
                try:
                    return attempt()
                except RateLimitError:
                    self.back_off()
                    rate_limited += 1
            level = logging.WARNING if rate_limited % 20 == 0 else logging.DEBUG
            logger.log(level, "asample got HTTP 429 (%d in a row); backing off", rate_limited)


class Scheduler(Protocol):
    """Anything that runs a short callback after a delay (Timers, Runtime)."""

    def call_later(self, delay: float, fn: Callable[[], None]) -> None: ...


class Timers:
    """Runs short callbacks at given times on one lazily started daemon thread."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, name: str = "tinker-timers"):
        self._clock = clock
        self._name = name
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._counter = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run `fn` (which must not block) after `delay` seconds; dropped once closed."""
        with self._cond:
            if self._closed:
                return
            heapq.heappush(self._heap, (self._clock() + max(delay, 0.0), next(self._counter), fn))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()

    @property
    def pending(self) -> int:
        """Callbacks waiting for their time."""
        return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    now = self._clock()
                    if self._heap and self._heap[0][0] <= now:
                        fn = heapq.heappop(self._heap)[2]
                        break
                    timeout = self._heap[0][0] - now if self._heap else WAIT_LOG_INTERVAL
                    self._cond.wait(min(timeout, WAIT_LOG_INTERVAL))
            try:
                fn()
            except Exception:
                logger.exception("a scheduled callback failed")

    def close(self) -> None:
        """Drop the pending callbacks and stop the thread."""
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify_all()
