"""Server-side futures: the outcomes of submitted requests, fetched by `retrieve_future` (one
long poll per future) or announced by `retrieve_futures` (one long poll per sampling client).

A result is kept until it has been delivered (or acknowledged by a batch poll) and then for a
grace period (a client may poll again when a response was lost on the way); an undelivered
result is kept for a longer bound. Expired request ids are remembered so that a late poll gets
410 (expired) instead of 404.

Futures submitted for a `Target` (a sampling session and the clone id of the client that
submitted them) also enter that target's completion log when they finish, each under a new
cursor: a batch poll returns the completions after the cursor it sends back, and forgets those
at or before it. A pending future may carry a cancel hook (`cancel_future`).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable

import attrs

from tinker.local.server.http_errors import Gone, NotFound, ServiceUnavailable
from tinker.local.server.outcomes import Outcome

logger = logging.getLogger(__name__)

#: Completions a target's log keeps before dropping the oldest unacknowledged ones.
MAX_COMPLETIONS_PER_TARGET = 100_000


class UnknownFuture(NotFound):
    """404: a request id this store never held (or forgot long ago)."""


@attrs.frozen
class Target:
    """The futures one client of a sampling session waits for (clone 0 is the original)."""

    sampling_session_id: str
    clone_id: int


@attrs.frozen
class Completion:
    """A finished future in a target's log, under its cursor."""

    cursor: int
    request_id: str
    outcome: Outcome


@attrs.define(slots=True)
class _Entry:
    condition: threading.Condition
    created_at: float
    target: Target | None = None
    outcome: Outcome | None = None
    delivered_at: float | None = None
    metadata_sent: bool = False
    cancel: Callable[[], bool] | None = None


class FutureStore:
    """Thread-safe map request_id -> pending or finished outcome, with bounded long polls."""

    def __init__(
        self,
        *,
        delivered_grace_seconds: float,
        undelivered_seconds: float,
        max_expired_ids: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._expired: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._max_expired = max_expired_ids
        self._grace = delivered_grace_seconds
        self._undelivered = undelivered_seconds
        self._clock = clock
        self._closed = False
        self._completed = threading.Condition(self._lock)
        self._logs: dict[Target, collections.deque[Completion]] = {}
        # Cursors only grow, also across restarts of the server (clients keep theirs).
        self._next_cursor = time.time_ns() // 1_000_000

    def add(self, request_id: str, *, target: Target | None = None) -> bool:
        """Register a pending request; False when the id is already known (a retried submit)."""
        with self._lock:
            if request_id in self._entries or request_id in self._expired:
                return False
            condition = threading.Condition(self._lock)
            self._entries[request_id] = _Entry(condition, self._clock(), target)
            return True

    def set_cancel(self, request_id: str, cancel: Callable[[], bool]) -> None:
        """Attach the hook `cancel_future` calls while the request is pending; it returns
        whether the work was stopped before it started."""
        with self._lock:
            entry = self._entries.get(request_id)
            if entry is not None and entry.outcome is None:
                entry.cancel = cancel

    def resolve(self, request_id: str, outcome: Outcome) -> None:
        """Store the outcome, wake every poll waiting for it and log it for its target."""
        with self._lock:
            entry = self._entries.get(request_id)
            if entry is None or entry.outcome is not None:
                return
            entry.outcome = outcome
            entry.cancel = None
            entry.condition.notify_all()
            if entry.target is not None:
                self._log_completion(entry.target, request_id, outcome)

    def _log_completion(self, target: Target, request_id: str, outcome: Outcome) -> None:
        log = self._logs.setdefault(target, collections.deque())
        if len(log) >= MAX_COMPLETIONS_PER_TARGET:
            dropped = log.popleft()
            logger.warning(
                "%s (clone %d): %d completions were never acknowledged; forgetting %s",
                target.sampling_session_id,
                target.clone_id,
                len(log) + 1,
                dropped.request_id,
            )
        self._next_cursor += 1
        log.append(Completion(self._next_cursor, request_id, outcome))
        self._completed.notify_all()

    def wait(self, request_id: str, timeout: float) -> Outcome | None:
        """The outcome, waiting up to `timeout` seconds; None if still pending.

        Raises UnknownFuture for an id never seen, Gone for an expired one.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            entry = self._lookup(request_id)
            while entry.outcome is None and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                entry.condition.wait(remaining)
            if entry.outcome is None:
                raise ServiceUnavailable("The server is shutting down.")
            if entry.delivered_at is None:
                entry.delivered_at = self._clock()
            return entry.outcome

    def claim_metadata(self, request_id: str) -> bool:
        """True the first time a finished future's answer may be metadata only (once each)."""
        with self._lock:
            entry = self._entries.get(request_id)
            if entry is None or entry.metadata_sent:
                return False
            entry.metadata_sent = True
            return True

    def cancel(self, request_id: str) -> bool:
        """Stop a pending request's work if it has not started; False when there is nothing
        to stop (finished, running, or not cancellable). UnknownFuture / Gone as `wait`."""
        with self._lock:
            entry = self._lookup(request_id)
            hook = entry.cancel if entry.outcome is None else None
            entry.cancel = None
        return hook() if hook is not None else False

    def completions(
        self, target: Target, after: int, timeout: float, acknowledged: Iterable[str]
    ) -> tuple[list[Completion], int]:
        """The target's completions after cursor `after` (waiting up to `timeout` seconds for
        one) and the cursor to send back; those at or before `after` are forgotten, and the
        acknowledged requests' results count as delivered."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            now = self._clock()
            for request_id in acknowledged:
                entry = self._entries.get(request_id)
                if entry is not None and entry.outcome is not None and entry.delivered_at is None:
                    entry.delivered_at = now
            log = self._logs.setdefault(target, collections.deque())
            while log and log[0].cursor <= after:
                log.popleft()
            while not log and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._completed.wait(remaining)
                log = self._logs.setdefault(target, collections.deque())
            new = list(log)
        return new, (new[-1].cursor if new else after)

    def forget_targets(self, sampling_session_ids: Iterable[str]) -> None:
        """Drop the completion logs of these sampling sessions (their session ended)."""
        ended = set(sampling_session_ids)
        with self._lock:
            for target in [t for t in self._logs if t.sampling_session_id in ended]:
                del self._logs[target]

    def sweep(self) -> int:
        """Forget results past their retention time; returns how many were dropped."""
        now = self._clock()
        with self._lock:
            stale = [
                rid
                for rid, entry in self._entries.items()
                if entry.outcome is not None
                and (
                    (entry.delivered_at is not None and now - entry.delivered_at > self._grace)
                    or now - entry.created_at > self._undelivered
                )
            ]
            for rid in stale:
                del self._entries[rid]
                self._expired[rid] = None
            while len(self._expired) > self._max_expired:
                self._expired.popitem(last=False)
            for target in [t for t, log in self._logs.items() if not log]:
                del self._logs[target]
            return len(stale)

    def pending_count(self) -> int:
        """Number of requests still without an outcome."""
        with self._lock:
            return sum(1 for entry in self._entries.values() if entry.outcome is None)

    def close(self) -> None:
        """Wake every waiting poll so that server threads can finish."""
        with self._lock:
            self._closed = True
            for entry in self._entries.values():
                entry.condition.notify_all()
            self._completed.notify_all()

    def _lookup(self, request_id: str) -> _Entry:
        entry = self._entries.get(request_id)
        if entry is not None:
            return entry
        if request_id in self._expired:
            raise Gone(f"The result of request {request_id!r} has expired; submit it again.")
        raise UnknownFuture(f"Future {request_id!r} not found.")
