"""Ordered submission: the requests of one training client reach the server in seq_id order.

Seq ids are reserved in the caller's thread when an operation is called (1, 2, 3, ... per
lane). A request waits in its lane until every earlier seq id has been sent (or failed, or was
given up); then it starts, and the next one starts when its submit completes. Submits are
futures, so no thread waits for its turn, and a submit that retries keeps its seq_id.
The chunks of one forward/forward_backward may go together (`submit_together`, when the server
enables parallel chunks): once their turn comes, all but the first are sent at once and the
first after them, so the server, which buffers by seq_id, can take the whole batch when the
first arrives.
A lane can be handed over (a pickled TrainingClient): it reserves nothing more, and the copy's
lane starts at the next seq id. A poisoned lane sends nothing more: a seq id it reserved will
never reach the server, which holds every later one back for it, so they fail at once instead.
"""

from __future__ import annotations

import concurrent.futures
import functools
import threading
from collections.abc import Callable, Sequence
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
        self._poison: BaseException | None = None

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

    def submit_together(
        self, seq_ids: Sequence[int], starts: Sequence[Callable[[], concurrent.futures.Future[T]]]
    ) -> list[APIFuture[T]]:
        """`submit` for consecutive reserved `seq_ids`, sent concurrently when their turn comes
        (the first one last, once the others were sent or failed); the lane moves on after the
        first was sent."""
        if len(seq_ids) != len(starts) or not seq_ids:
            raise ValueError("submit_together needs one start per seq_id, and at least one")
        futures: list[APIFuture[T]] = []
        for _ in seq_ids:
            future: APIFuture[T] = APIFuture()
            future._before_wait = self._before_wait
            futures.append(future)
        group = _Together(starts, futures)
        futures[0].add_done_callback(group.fail_if_unsent)
        for seq_id in seq_ids[1:]:
            self.skip(seq_id)
        self._park(seq_ids[0], group.start, futures[0])
        return futures

    def hand_over(self, reason: str) -> int:
        """Reserve nothing more here (later calls raise HandedOverError with `reason`) and
        return the next seq id, where the lane that takes over starts."""
        with self._lock:
            if self._poison is not None:
                raise self._poison
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
            poison = self._poison
            if poison is None:
                self._parked[seq_id] = (start, future)
                if self._running or self._next_run not in self._parked:
                    return
                self._running = True
        if poison is None:
            self._run_ready()
        elif future is not None:
            reject(future, poison)

    def _run_ready(self) -> None:
        """Start parked submits in order, while each one completes at once; the first one that
        is still in flight continues the lane from its done-callback."""
        while True:
            with self._lock:
                entry = self._parked.pop(self._next_run, None)
                if entry is None:  # failed meanwhile (poisoned or closing): nothing to run
                    self._running = False
                    return
            start, future = entry
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

    @property
    def poison_error(self) -> BaseException | None:
        """What poisoned the lane (None while it is healthy)."""
        return self._poison

    def poison(self, exc: BaseException) -> None:
        """Send nothing more: every parked submit and every later one fails with `exc` (the
        first poison stays)."""
        with self._lock:
            if self._poison is None:
                self._poison = exc
            exc = self._poison
        self.fail_pending(exc)

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


class _Together:
    """The chunks of one operation sent together: every chunk but the first at once, then the
    first once they were all sent (or failed); `start` returns the first one's submit."""

    def __init__(
        self,
        starts: Sequence[Callable[[], concurrent.futures.Future[Any]]],
        futures: Sequence[APIFuture[Any]],
    ) -> None:
        self._starts = starts
        self._futures = futures
        self._lock = threading.Lock()
        self._left = len(starts) - 1
        self._first: APIFuture[Any] = APIFuture()
        self._started = False

    def fail_if_unsent(self, first: concurrent.futures.Future[Any]) -> None:
        """The group failed before its turn came (the lane was poisoned or closed): so does
        every chunk."""
        if self._started or first.cancelled() or (exc := first.exception()) is None:
            return
        for future in self._futures[1:]:
            reject(future, exc)

    def start(self) -> concurrent.futures.Future[Any]:
        self._started = True
        if self._left == 0:
            self._send_first()
        for start, future in zip(self._starts[1:], self._futures[1:], strict=True):
            sent = OrderedLane._start(start, future)
            if sent is None:
                self._one_sent(future)
            else:
                sent.add_done_callback(functools.partial(settle_from, future))
                sent.add_done_callback(self._one_sent)
        return self._first

    def _one_sent(self, _: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._left -= 1
            last = self._left == 0
        if last:
            self._send_first()

    def _send_first(self) -> None:
        try:
            sent = self._starts[0]()
        except BaseException as exc:
            reject(self._first, exc)
            return
        sent.add_done_callback(functools.partial(settle_from, self._first))
