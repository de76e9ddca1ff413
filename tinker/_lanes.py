"""Ordered submission: the requests of one training client reach the server in seq_id order.

Seq ids are reserved in the caller's thread when an operation is called (1, 2, 3, ... per
lane). A request waits in its lane until every earlier seq id has been sent (or failed, or was
given up); then it starts, and the next one starts when its submit completes. Submits are
futures, so no thread waits for its turn, and a submit that retries keeps its seq_id.
A lane can be handed over (a pickled TrainingClient): it reserves nothing more, and the copy's
lane starts at the next seq id.
"""

from __future__ import annotations

import concurrent.futures
import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from tinker._futures import APIFuture, reject, settle_from
from tinker.errors import TinkerError

__all__ = ["HandedOverError", "OrderedLane"]

T = TypeVar("T")


class HandedOverError(TinkerError):
    """The lane's operations now go through another client (a pickled copy)."""


# A submit: starts sending (without blocking) and returns the future of its completion.
Start = Callable[[], concurrent.futures.Future[Any]]


class OrderedLane:
    """Starts each submit of one training client once every earlier seq_id has completed."""

    def __init__(
        self, before_wait: Callable[[], None] | None = None, *, first_seq_id: int = 1
    ) -> None:
        self._before_wait = before_wait
        self._lock = threading.Lock()
        self._next_seq = first_seq_id
        self._next_run = first_seq_id
        self._handed_over: str | None = None
        self._parked: dict[int, tuple[Start | None, APIFuture[Any] | None]] = {}
        self._running = False

    def reserve(self, n: int = 1) -> list[int]:
        """Take the next `n` seq ids."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        with self._lock:
            if self._handed_over is not None:
                raise HandedOverError(self._handed_over)
            first = self._next_seq
            self._next_seq += n
        return list(range(first, first + n))

    def submit(
        self, seq_id: int, start: Callable[[], concurrent.futures.Future[T]]
    ) -> APIFuture[T]:
        """Call `start()` once every earlier reserved seq id has completed; a future of the
        value its future resolves to (or of the error `start` raised)."""
        future: APIFuture[T] = APIFuture()
        future._before_wait = self._before_wait
        self._park(seq_id, start, future)
        return future

    def hand_over(self, reason: str) -> int:
        """Reserve nothing more here (later calls raise HandedOverError with `reason`) and
        return the next seq id, where the lane that takes over starts."""
        with self._lock:
            if self._handed_over is not None:
                raise HandedOverError(self._handed_over)
            self._handed_over = reason
            return self._next_seq

    def skip(self, seq_id: int) -> None:
        """Give up a reserved seq id without a submit, so later ones are not held back."""
        self._park(seq_id, None, None)

    def _park(self, seq_id: int, start: Start | None, future: APIFuture[Any] | None) -> None:
        with self._lock:
            if not self._next_run <= seq_id < self._next_seq:
                raise ValueError(f"seq_id {seq_id} was not reserved or has already run")
            if seq_id in self._parked:
                raise ValueError(f"seq_id {seq_id} was already submitted")
            self._parked[seq_id] = (start, future)
            if self._running or self._next_run not in self._parked:
                return
            self._running = True
        self._run_ready()

    def _run_ready(self) -> None:
        """Start parked submits in order, while each one completes at once; the first one that
        is still in flight continues the lane from its done-callback."""
        while True:
            with self._lock:
                start, future = self._parked.pop(self._next_run)
            if start is not None and future is not None:
                submitted = self._start(start, future)
                if submitted is not None and not submitted.done():
                    submitted.add_done_callback(functools.partial(self._completed, future))
                    return
                if submitted is not None:
                    settle_from(future, submitted)
            if not self._advance():
                return

    @staticmethod
    def _start(start: Start, future: APIFuture[Any]) -> concurrent.futures.Future[Any] | None:
        try:
            return start()
        except BaseException as exc:
            reject(future, exc)
            return None

    def _completed(self, future: APIFuture[Any], done: concurrent.futures.Future[Any]) -> None:
        settle_from(future, done)
        if self._advance():
            self._run_ready()

    def _advance(self) -> bool:
        """Move past the current seq id; True when the next one is parked (the caller runs it)."""
        with self._lock:
            self._next_run += 1
            if self._next_run in self._parked:
                return True
            self._running = False
            return False

    def fail_pending(self, exc: BaseException) -> None:
        """Fail every parked submit (the runtime is closing)."""
        with self._lock:
            parked = list(self._parked.values())
            self._parked.clear()
        for _, future in parked:
            if future is not None:
                reject(future, exc)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
