"""Per-training-run job queue that executes submitted operations strictly in seq_id order.

Clients submit training operations in order, but over several connections they may arrive out
of order. An operation waits for its predecessors; when a seq_id never arrives (its submit
failed on the client), the queue waits a bounded time, logs the gap and goes on.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from tinker.local.server.http_errors import ServiceUnavailable

logger = logging.getLogger(__name__)

Job = Callable[[], None]


def _nothing() -> None:
    """Default abandon callback."""


class OrderedQueue:
    """Runs one training run's jobs one at a time, lowest seq_id first, on a lazily started thread.

    The worker thread exists only while there is work (it exits after `idle_seconds` without
    any), so the thread count follows the number of busy runs, not the number of runs.
    """

    def __init__(
        self,
        name: str,
        *,
        first_seq_id: int = 1,
        gap_seconds: float,
        idle_seconds: float = 2.0,
    ) -> None:
        self._name = name
        self._next = first_seq_id
        self._gap = gap_seconds
        self._idle = idle_seconds
        self._cond = threading.Condition()
        self._pending: dict[int, tuple[Job, Job]] = {}
        self._unordered: collections.deque[tuple[Job, Job]] = collections.deque()
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def next_seq_id(self) -> int:
        """The seq_id the queue is waiting for."""
        with self._cond:
            return self._next

    def submit(self, seq_id: int, job: Job, abandon: Job = _nothing) -> None:
        """Queue `job` to run after every lower seq_id has run (or been given up on).

        `abandon` is called instead if the queue is closed before the job ran.
        """
        with self._cond:
            self._check_open()
            if seq_id < self._next:
                logger.warning(
                    "%s: seq_id %d arrived after its turn (next is %d); running it now",
                    self._name,
                    seq_id,
                    self._next,
                )
                self._unordered.append((job, abandon))
            else:
                self._pending[seq_id] = (job, abandon)
            self._wake_locked()

    def submit_unordered(self, job: Job, abandon: Job = _nothing) -> None:
        """Queue `job` to run after the current job, ahead of later seq_ids (ops without seq_id)."""
        with self._cond:
            self._check_open()
            self._unordered.append((job, abandon))
            self._wake_locked()

    def close(self) -> None:
        """Abandon queued jobs and let the worker thread exit after its current job."""
        with self._cond:
            self._closed = True
            dropped = [*self._unordered, *(self._pending[seq] for seq in sorted(self._pending))]
            self._pending.clear()
            self._unordered.clear()
            self._cond.notify_all()
        for _, abandon in dropped:
            try:
                abandon()
            except Exception:
                logger.exception("%s: abandoning a queued job raised", self._name)

    def _check_open(self) -> None:
        if self._closed:
            raise ServiceUnavailable(f"{self._name} is no longer loaded.")

    def _wake_locked(self) -> None:
        self._cond.notify_all()
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._work, name=f"tinker-local-run-{self._name}", daemon=True
            )
            self._thread.start()

    def _work(self) -> None:
        while True:
            with self._cond:
                job = self._take_locked()
                if job is None:
                    self._thread = None
                    return
            try:
                job()
            except Exception:  # jobs report their own failures; this keeps the worker alive
                logger.exception("%s: a queued job raised", self._name)

    def _take_locked(self) -> Job | None:
        gap_since: float | None = None
        while not self._closed:
            if self._unordered:
                return self._unordered.popleft()[0]
            entry = self._pending.pop(self._next, None)
            if entry is not None:
                self._next += 1
                return entry[0]
            if not self._pending:
                if not self._cond.wait(self._idle) and not self._pending and not self._unordered:
                    return None
                continue
            now = time.monotonic()
            gap_since = now if gap_since is None else gap_since
            remaining = gap_since + self._gap - now
            if remaining > 0:
                self._cond.wait(remaining)
                continue
            lowest = min(self._pending)
            logger.warning(
                "%s: seq_id %s never arrived after %.1f s; continuing with %d",
                self._name,
                str(self._next) if lowest == self._next + 1 else f"{self._next}..{lowest - 1}",
                self._gap,
                lowest,
            )
            self._next = lowest
            gap_since = None
        return None
