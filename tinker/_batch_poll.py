"""The batch completion poller of the 0.38 protocol (`POST /api/v1/retrieve_futures`).

When the server's config enables it, a sample's future is not polled on its own: it waits in
the `CompletionWatcher` of its sampling client (one per sampling session and clone id), which
long-polls for the completions of all of them at once. A completion starts the future's usual
poll job (tinker._poller), which fetches the payload with one `retrieve_future`; a finished
future's id is acknowledged in the next batch poll so the server can drop it.

The watcher runs as repeated attempts on the poll pool (no thread of its own): a long poll
while futures wait, an ack-only poll (`timeout: 0`) while only acknowledgements are due, and
nothing at all once both are done; closing sends one last ack-only poll when anything is left
to acknowledge. A new cursor alone waits while payloads it announced are
being fetched: their acknowledgements follow soon and go in the same poll (a sequential
sample costs one batch poll less). 402 pauses 5 s; 408, 409, 429, 5xx and no answer pause 1 s;
a 400 pauses 1 s at most 3 times in a row; any other answer fails every waiting future.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from tinker._futures import reject
from tinker._retry import BILLING_PAUSE, MAX_BAD_REQUESTS
from tinker._transport import Reply
from tinker.errors import APIConnectionError, TinkerError

if TYPE_CHECKING:
    from tinker._poller import PollJob

__all__ = ["CLONE_STRIDE", "BatchSender", "BatchTarget", "CompletionWatcher"]

logger = logging.getLogger(__name__)

# A sampling client's seq_ids are clone id x CLONE_STRIDE + n (clone 0: the original).
CLONE_STRIDE = 1_000_000_000
LONG_POLL_TIMEOUT = 45.0
ACK_POLL_TIMEOUT = 5.0
FINAL_ACK_TIMEOUT = 1.0  # the one ack-only poll on close, which must stay quick
BUSY_PAUSE = 1.0
MAX_ABANDONED = 10_000  # abandoned ids remembered for acknowledgement (the oldest go first)
_BUSY = frozenset({408, 409, 429})

# (request body, read timeout) -> reply; raises APIConnectionError when nothing answers.
BatchSender = Callable[[Mapping[str, Any], float], Reply]


@attrs.frozen
class BatchTarget:
    """The futures of one sampling client: its sampling session and clone id (0: original)."""

    sampling_session_id: str
    clone_id: int


class _Again(Exception):
    """Poll again after `delay` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"poll again in {delay} s")
        self.delay = delay


class CompletionWatcher:
    """Waits for the completions of one target's futures; `start(job, size)` polls a completed
    one (`size`: the payload bytes the completion announced, if any)."""

    def __init__(
        self,
        target: BatchTarget,
        send: BatchSender,
        start: Callable[[PollJob, int | None], None],
        run: Callable[[CompletionWatcher], None],
    ) -> None:
        self.target = target
        self._send = send
        self._start = start
        self._run = run
        self._lock = threading.Lock()
        self._waiting: dict[str, PollJob] = {}
        self._early: dict[str, int | None] = {}  # completions nobody waited for yet
        self._acks: set[str] = set()
        self._fetching: set[str] = set()  # completed futures whose payload is being fetched
        # Futures given up before their completion came: acknowledged when it comes.
        self._abandoned: dict[str, None] = {}
        self._cursor = 0
        self._cursor_sent = 0
        self._running = False
        self._bad_requests = 0
        self._failure: TinkerError | None = None

    @property
    def waiting(self) -> int:
        """Futures waiting for their completion."""
        return len(self._waiting)

    def wait(self, job: PollJob) -> None:
        """Hold `job` until its completion arrives, then start its payload poll."""
        with self._lock:
            failure = self._failure
            early = job.request_id in self._early
            size = self._early.pop(job.request_id, None)
            if failure is None and not early:
                self._waiting[job.request_id] = job
            elif early:
                self._fetching.add(job.request_id)
        job.future.add_done_callback(lambda _: self._acknowledge(job.request_id))
        if failure is not None:
            reject(job.future, failure)
        elif early:
            self._ready(job, size)
        else:
            self._wake()

    def _acknowledge(self, request_id: str) -> None:
        with self._lock:
            abandoned = self._waiting.pop(request_id, None) is not None
            self._fetching.discard(request_id)
            if self._failure is None:
                self._done(request_id, abandoned)
        self._wake()

    def _done(self, request_id: str, abandoned: bool) -> None:
        """Note a future that ended (lock held): acknowledged in the next poll, or, when it was
        given up before the server had its outcome, once its completion comes."""
        if not abandoned:
            self._acks.add(request_id)
            return
        self._abandoned[request_id] = None
        if len(self._abandoned) > MAX_ABANDONED:
            del self._abandoned[next(iter(self._abandoned))]

    def _wake(self) -> None:
        with self._lock:
            if self._running or not self._has_work():
                return
            self._running = True
        self._run(self)

    def _has_work(self) -> bool:
        cursor_due = self._cursor != self._cursor_sent and not self._fetching
        return bool(self._waiting or self._acks or cursor_due)

    def poll_once(self, _: CompletionWatcher) -> None:
        """One batch poll; raises _Again while there is more to do, returns when idle."""
        with self._lock:
            acks = sorted(self._acks)
            long_poll = bool(self._waiting)
            cursor = self._cursor
        body = self._body(cursor, acks, long_poll=long_poll)
        try:
            reply = self._send(body, LONG_POLL_TIMEOUT if long_poll else ACK_POLL_TIMEOUT)
        except APIConnectionError as exc:
            logger.debug("batch poll of %s got no answer (%s)", self.target, exc)
            raise _Again(BUSY_PAUSE) from None
        self._check_status(reply)
        data = reply.json() if isinstance(reply.body, dict) else {}
        ready: list[tuple[PollJob, int | None]] = []
        with self._lock:
            self._cursor_sent = cursor
            self._cursor = int(data.get("cursor", cursor))
            self._acks.difference_update(acks)
            for completion in data.get("completions") or ():
                request_id = completion.get("request_id")
                size = completion.get("response_payload_uncompressed_size")
                job = self._waiting.pop(request_id, None)
                if job is not None:
                    self._fetching.add(request_id)
                    ready.append((job, size))
                elif request_id in self._abandoned:
                    del self._abandoned[request_id]
                    self._acks.add(request_id)  # nobody fetches it: the server may drop it
                else:
                    self._early[request_id] = size
        for job, size in ready:
            self._ready(job, size)
        with self._lock:
            if self._has_work():
                raise _Again(0.0)
            self._running = False

    def _body(self, cursor: int, acks: list[str], *, long_poll: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "target": {
                "type": "sampling_session",
                "sampling_session_id": self.target.sampling_session_id,
                "cloned_sampler_id": self.target.clone_id,
            },
            "prev_cursor": cursor,
            "retrieved_request_ids": acks,
        }
        if not long_poll:
            body["timeout"] = 0.0
        return body

    def final_ack(self, timeout: float) -> None:
        """On close: one ack-only poll for what is still unacknowledged (best effort: a failure
        is logged at debug level only)."""
        with self._lock:
            acks = sorted(self._acks)
            cursor = self._cursor
            if not acks and cursor == self._cursor_sent:
                return
        try:
            reply = self._send(self._body(cursor, acks, long_poll=False), timeout)
        except Exception as exc:
            logger.debug("final batch poll of %s failed: %s", self.target, exc)
            return
        if reply.status_code < 300:
            with self._lock:
                self._acks.difference_update(acks)
                self._cursor_sent = cursor

    def _check_status(self, reply: Reply) -> None:
        status = reply.status_code
        if status < 300:
            self._bad_requests = 0
            return
        if status == 402:
            raise _Again(BILLING_PAUSE)
        if status in _BUSY or status >= 500:
            logger.debug(
                "batch poll of %s got HTTP %d; polling again in %.1fs",
                self.target,
                status,
                BUSY_PAUSE,
            )
            raise _Again(BUSY_PAUSE)
        if status == 400 and self._bad_requests < MAX_BAD_REQUESTS:
            self._bad_requests += 1
            raise _Again(BUSY_PAUSE)
        raise TinkerError(
            f"retrieve_futures polling failed for sampling session "
            f"{self.target.sampling_session_id}: HTTP {status} {reply.body!r}"
        )

    def _ready(self, job: PollJob, size: int | None) -> None:
        """The completion of `job` arrived: fetch its payload (announced sizes need no
        metadata-only answer)."""
        if size:
            job.allow_metadata_only = False
        self._start(job, size)

    def pause_after(self, error: Exception) -> float | None:
        """The pause before the next batch poll; None after a terminal failure, which fails
        every waiting future."""
        if isinstance(error, _Again):
            return error.delay
        failure = error if isinstance(error, TinkerError) else TinkerError(str(error))
        if not isinstance(error, TinkerError):
            logger.error("batch poll of %s failed unexpectedly", self.target, exc_info=error)
        with self._lock:
            self._failure = failure
            jobs = list(self._waiting.values())
            self._waiting.clear()
            self._running = False
        for job in jobs:
            reject(job.future, failure)
        return None
