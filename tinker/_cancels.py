"""Cancelling abandoned samples on a 0.38 server (`POST /api/v1/cancel_future`).

When the server's dynamic config enables it, the poller hands the request id of every sample
whose future was cancelled (or still pending when its client closed) to a `CancelDrain`. The
drain sends each id once, one attempt each, at most `batch` at a time on the poll pool; a
failed cancel is logged and dropped (the server also stops work once heartbeats stop). Nobody
waits for a cancel: the caller's future is already settled.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from tinker._workers import Scheduler

__all__ = ["CANCEL_TIMEOUT", "CancelDrain"]

logger = logging.getLogger(__name__)

CANCEL_TIMEOUT = 30.0


class CancelDrain:
    """Sends `send(request_id)` for queued ids from at most `batch` workers of `pool`."""

    def __init__(
        self,
        send: Callable[[str], None],
        pool: Scheduler,
        *,
        batch: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        self._send = send
        self._pool = pool
        self.batch = batch
        self._clock = clock
        self._lock = threading.Lock()
        self._queue: collections.deque[str] = collections.deque()
        self._draining = 0

    @property
    def queued(self) -> int:
        """Cancels not yet sent."""
        return len(self._queue)

    def cancel(self, request_id: str) -> None:
        """Queue a cancel of `request_id` (the caller never waits for it)."""
        with self._lock:
            self._queue.append(request_id)
            start = self._draining < self.batch
            if start:
                self._draining += 1
        if start and not self._pool.call_later(0.0, self._drain, self._dropped):
            self._dropped(None)

    def _drain(self) -> None:
        while self._send_next():
            pass
        with self._lock:
            self._draining -= 1

    def _dropped(self, _reason: BaseException | None) -> None:
        """The pool closed before a drain ran: `close` sends what is left."""
        with self._lock:
            self._draining -= 1

    def _send_next(self) -> bool:
        """Send the next queued cancel; False when the queue is empty."""
        with self._lock:
            if not self._queue:
                return False
            request_id = self._queue.popleft()
        try:
            self._send(request_id)
        except Exception as exc:
            logger.warning("could not cancel request %s on the server: %s", request_id, exc)
        return True

    def close(self, budget: float) -> None:
        """Send the cancels still queued from this thread for at most `budget` seconds; the
        rest are dropped with one log line (the client is closing)."""
        deadline = self._clock() + budget
        while self._clock() < deadline and self._send_next():
            pass
        with self._lock:
            left = len(self._queue)
            self._queue.clear()
        if left:
            logger.info(
                "closing: %d abandoned samples were not cancelled on the server (it stops them "
                "when the session ends)",
                left,
            )
