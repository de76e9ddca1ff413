"""Worker pools: tasks run when they are due, on a bounded set of threads started on demand.

A `WorkerPool` keeps one time-ordered queue of tasks. At most `max_workers` threads take the
next due task; they start when work arrives and exit after 30 s without work. A task that has
to wait (a retry pause, a delayed poll) is an entry in the queue, never a sleeping thread, so
thousands of waiting operations cost no thread. The runtime's timer thread is a pool of one.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import attrs

from tinker._futures import APIFuture, reject, resolve
from tinker.errors import TinkerError

__all__ = ["ClientClosedError", "Pauses", "Scheduler", "WorkerPool"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

IDLE_WORKER_SECONDS = 30.0

# Told, instead of running, that its task will never run (the pool closed): gets the reason.
OnDrop = Callable[[BaseException], None]


class ClientClosedError(TinkerError):
    """The client was closed while the operation waited."""


class Scheduler(Protocol):
    """Anything that runs a short callback after a delay (a WorkerPool, a test's fake clock)."""

    def call_later(
        self, delay: float, fn: Callable[[], None], on_drop: OnDrop | None = None
    ) -> bool:
        """Run `fn` after `delay` seconds; False (and `fn` never runs) once closed."""
        ...


class WorkerPool:
    """Runs tasks when due on at most `max_workers` threads; no thread waits for a due time."""

    def __init__(
        self,
        max_workers: int,
        *,
        name: str,
        idle_seconds: float = IDLE_WORKER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self.max_workers = max_workers
        self.name = name
        self._idle_seconds = idle_seconds
        self._clock = clock
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, Callable[[], None], OnDrop | None]] = []
        self._order = itertools.count()
        self._thread_ids = itertools.count()
        self._workers: set[threading.Thread] = set()
        self._idle = 0
        self._closed = False

    @property
    def worker_count(self) -> int:
        """Threads of this pool alive now."""
        return len(self._workers)

    @property
    def pending(self) -> int:
        """Tasks waiting in the queue (due or not)."""
        return len(self._queue)

    def call_later(
        self, delay: float, fn: Callable[[], None], on_drop: OnDrop | None = None
    ) -> bool:
        """Run `fn` on a worker `delay` seconds from now; False once the pool is closed.

        `on_drop(reason)` is called instead if the pool closes before `fn` ran.
        """
        with self._cond:
            if self._closed:
                return False
            due = self._clock() + max(delay, 0.0)
            heapq.heappush(self._queue, (due, next(self._order), fn, on_drop))
            if self._idle == 0 and len(self._workers) < self.max_workers:
                worker = threading.Thread(
                    target=self._work, name=f"{self.name}-{next(self._thread_ids)}", daemon=True
                )
                self._workers.add(worker)
                worker.start()
            else:
                self._cond.notify()
            return True

    def run(self, fn: Callable[..., T], *args: Any) -> APIFuture[T]:
        """A future of `fn(*args)`, run on a worker (ClientClosedError once the pool closed)."""
        future: APIFuture[T] = APIFuture()

        def task() -> None:
            if future.done():  # cancelled by its owner
                return
            try:
                resolve(future, fn(*args))
            except BaseException as exc:
                reject(future, exc)

        if not self.call_later(0.0, task, lambda reason: reject(future, reason)):
            reject(future, ClientClosedError("this client has been closed"))
        return future

    def _next_task(self) -> Callable[[], None] | None:
        """The next due task, or None when this worker should exit (closed or long idle)."""
        idle_since = self._clock()
        with self._cond:
            while not self._closed:
                now = self._clock()
                if self._queue and self._queue[0][0] <= now:
                    return heapq.heappop(self._queue)[2]
                if not self._queue and now - idle_since >= self._idle_seconds:
                    break
                timeout = self._queue[0][0] - now if self._queue else self._idle_seconds
                self._idle += 1
                try:
                    self._cond.wait(min(timeout, self._idle_seconds))
                finally:
                    self._idle -= 1
            self._workers.discard(threading.current_thread())
            return None

    def _work(self) -> None:
        while True:
            task = self._next_task()
            if task is None:
                return
            try:
                task()
            except Exception:  # a task must settle its own futures; this one had a bug
                logger.exception("a task of %s failed", self.name)

    def close(self, reason: BaseException | None = None) -> None:
        """Stop at once: queued tasks never run (each one's `on_drop` gets `reason`)."""
        error = reason or ClientClosedError("this client has been closed")
        with self._cond:
            self._closed = True
            dropped = [entry[3] for entry in self._queue]
            self._queue.clear()
            self._cond.notify_all()
        for on_drop in dropped:
            if on_drop is not None:
                on_drop(error)

    def _after_fork_in_child(self) -> None:
        """Forget the parent's threads, lock and queue: its tasks are the parent's work."""
        self._cond = threading.Condition()
        self._queue = []
        self._workers = set()
        self._idle = 0


@attrs.frozen
class Pauses:
    """How a retry pause or a back-off wait passes: as a delay in a scheduler's queue.

    With `fake_sleep` (tests drive time with a fake clock), the pause calls `fake_sleep(delay)`
    and the continuation runs at once.
    """

    fake_sleep: Callable[[float], None] | None = None

    def later(
        self,
        scheduler: Scheduler,
        delay: float,
        fn: Callable[[], None],
        on_drop: OnDrop | None = None,
    ) -> bool:
        """Run `fn` on `scheduler` once `delay` seconds have passed; False once it is closed."""
        if self.fake_sleep is not None and delay > 0:
            self.fake_sleep(delay)
            delay = 0.0
        return scheduler.call_later(delay, fn, on_drop)
