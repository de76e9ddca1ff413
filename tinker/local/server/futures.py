"""Server-side futures: encoded result bodies waiting to be fetched by `retrieve_future`,
with long-poll.

A result is kept until it has been delivered and then for a grace period (a client may poll
again when a response was lost on the way); an undelivered result is kept for a longer bound.
Expired request ids are remembered so that a late poll gets 410 (expired) instead of 404.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

import attrs

from tinker.local.server.http_errors import Gone, NotFound, ServiceUnavailable


class UnknownFuture(NotFound):
    """404: a request id this store never held (or forgot long ago)."""


@attrs.define(slots=True)
class _Entry:
    condition: threading.Condition
    created_at: float
    body: bytes | None = None
    delivered_at: float | None = None


class FutureStore:
    """Thread-safe map request_id -> pending or finished result, with bounded long-poll waits."""

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

    def add(self, request_id: str) -> bool:
        """Register a pending request; False when the id is already known (a retried submit)."""
        with self._lock:
            if request_id in self._entries or request_id in self._expired:
                return False
            self._entries[request_id] = _Entry(threading.Condition(self._lock), self._clock())
            return True

    def resolve(self, request_id: str, body: bytes) -> None:
        """Store the final JSON body (a result or a failure) and wake every poll waiting for it."""
        with self._lock:
            entry = self._entries.get(request_id)
            if entry is None or entry.body is not None:
                return
            entry.body = body
            entry.condition.notify_all()

    def wait(self, request_id: str, timeout: float) -> bytes | None:
        """Return the final body, waiting up to `timeout` seconds; None if still pending.

        Raises UnknownFuture for an id never seen, Gone for an expired one.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            entry = self._lookup(request_id)
            while entry.body is None and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                entry.condition.wait(remaining)
            if entry.body is None:
                raise ServiceUnavailable("The server is shutting down.")
            if entry.delivered_at is None:
                entry.delivered_at = self._clock()
            return entry.body

    def sweep(self) -> int:
        """Forget results past their retention time; returns how many were dropped."""
        now = self._clock()
        with self._lock:
            stale = [
                rid
                for rid, entry in self._entries.items()
                if entry.body is not None
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
            return len(stale)

    def pending_count(self) -> int:
        """Number of requests still without a result."""
        with self._lock:
            return sum(1 for entry in self._entries.values() if entry.body is None)

    def close(self) -> None:
        """Wake every waiting poll so that server threads can finish."""
        with self._lock:
            self._closed = True
            for entry in self._entries.values():
                entry.condition.notify_all()

    def _lookup(self, request_id: str) -> _Entry:
        entry = self._entries.get(request_id)
        if entry is not None:
            return entry
        if request_id in self._expired:
            raise Gone(f"The result of request {request_id!r} has expired; submit it again.")
        raise UnknownFuture(f"Future {request_id!r} not found.")
