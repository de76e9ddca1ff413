"""Telemetry: a bounded event queue flushed in batches by one daemon thread.

Events (SESSION_START, SESSION_END, GENERIC_EVENT, UNHANDLED_EXCEPTION, each with an id, a
per-session index, a severity and a UTC timestamp) queue without blocking; past 10000 they are
dropped with a warning. The flusher sends batches of up to 100 to `POST /api/v1/telemetry`
(answered `{"status": "accepted"}`) every 10 s, or at once when 100 events are waiting. A failed
batch is retried a bounded number of times and then dropped, so a dead endpoint never wedges
the flusher, and `close()` drains what it can within a short deadline. Secrets are scrubbed
from every payload.
"""

from __future__ import annotations

import collections
import datetime
import json
import logging
import platform
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from tinker._calls import ApiCall
from tinker._retry import RetryPolicy
from tinker._transport import Traffic
from tinker.errors import APIResponseValidationError, RequestErrorCategory, RequestFailedError

__all__ = ["Telemetry", "is_user_error", "send_batch"]

logger = logging.getLogger(__name__)

MAX_BATCH_SIZE = 100
FLUSH_INTERVAL = 10.0
MAX_QUEUE_SIZE = 10000
SEND_ATTEMPTS = 3
RETRY_PAUSE = 1.0
CLOSE_DRAIN_SECONDS = 1.0

# (batch body, timeout in seconds, final) -> None; raises when the batch was not accepted.
BatchSender = Callable[[dict[str, Any], float, bool], None]
# Runs one ApiCall in the calling thread and returns the decoded answer.
CallFn = Callable[[ApiCall], Any]


def send_batch(call: CallFn, body: dict[str, Any], timeout: float, final: bool) -> None:
    """POST one batch (two transport retries, none for the final drain); raise unless accepted."""
    data = call(
        ApiCall(
            sdk_method=None,  # background traffic
            traffic=Traffic.TELEMETRY,
            method="POST",
            path="/api/v1/telemetry",
            body=body,
            timeout=timeout,
            retry=RetryPolicy(max_retries=0 if final else 2),
        )
    )
    if not isinstance(data, dict) or data.get("status") != "accepted":
        raise APIResponseValidationError(f"telemetry not accepted: {data!r}", body=data)


def _iso_utc(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_user_error(exc: BaseException) -> bool:
    """A failure caused by the caller: a User-category failed request or a 4xx other than 408.

    Walks `__cause__` and `__context__` (as the official SDK does, 409/410/429 count).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if (
            isinstance(current, RequestFailedError)
            and current.category is RequestErrorCategory.User
        ):
            return True
        status = getattr(current, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500 and status != 408:
            return True
        current = current.__cause__ or current.__context__
    return False


class Telemetry:
    """Queues telemetry events for one session and flushes them on a daemon thread."""

    def __init__(
        self,
        send: BatchSender,
        *,
        session_id: str,
        sdk_version: str,
        secrets: Sequence[str] = (),
        timeout: float = 5.0,
        flush_interval: float = FLUSH_INTERVAL,
        wall_clock: Callable[[], float] = time.time,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        self._send = send
        self.session_id = session_id
        self.sdk_version = sdk_version
        self._secrets = tuple(s for s in secrets if s)
        self._timeout = timeout
        self.flush_interval = flush_interval
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._index = 0
        self._dropped = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._wait = wait if wait is not None else self._wake.wait
        self._idle = threading.Condition(self._lock)
        self._sending = False
        self._thread: threading.Thread | None = None
        self.started_at = wall_clock()

    # -- recording ------------------------------------------------------------------------

    def _enqueue(self, event: str, severity: str, fields: dict[str, Any]) -> None:
        with self._lock:
            if len(self._queue) >= MAX_QUEUE_SIZE:
                self._dropped += 1
                if self._dropped == 1 or self._dropped % 1000 == 0:
                    logger.warning("Telemetry queue full: %d events dropped", self._dropped)
                return
            record = {
                "event": event,
                "event_id": str(uuid.uuid4()),
                "event_session_index": self._index,
                "severity": severity,
                "timestamp": _iso_utc(fields.pop("_at", None) or self._wall_clock()),
                **fields,
            }
            self._index += 1
            self._queue.append(record)
            full = len(self._queue) >= MAX_BATCH_SIZE
        if full:
            self._wake.set()

    def session_start(self) -> None:
        """Queue SESSION_START, stamped with the session's start time."""
        self._enqueue("SESSION_START", "INFO", {"_at": self.started_at})

    def session_end(self) -> None:
        """Queue SESSION_END with the session's duration as str(timedelta)."""
        duration = datetime.timedelta(seconds=max(0.0, self._wall_clock() - self.started_at))
        self._enqueue("SESSION_END", "INFO", {"duration": str(duration)})

    def generic_event(
        self, event_name: str, event_data: dict[str, Any] | None = None, severity: str = "INFO"
    ) -> None:
        """Queue a GENERIC_EVENT (low-cardinality name plus a JSON object)."""
        self._enqueue(
            "GENERIC_EVENT", severity, {"event_name": event_name, "event_data": event_data or {}}
        )

    def exception(self, exc: BaseException, *, fatal: bool = False) -> None:
        """Queue a user_error or UNHANDLED_EXCEPTION for `exc`; with `fatal`, also SESSION_END
        and an immediate flush."""
        if is_user_error(exc):
            data: dict[str, Any] = {"error_type": type(exc).__name__, "message": str(exc)}
            status = getattr(exc, "status_code", None)
            if isinstance(status, int):
                data["status_code"] = status
            body = getattr(exc, "body", None)
            if body is not None:
                data["body"] = body
            self.generic_event("user_error", data, "WARNING")
        else:
            trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            self._enqueue(
                "UNHANDLED_EXCEPTION",
                "ERROR",
                {"error_type": type(exc).__name__, "error_message": str(exc), "traceback": trace},
            )
        if fatal:
            self.session_end()
            self._wake.set()

    def submit_failure(
        self, error: BaseException, attempt: int, elapsed: float, will_retry: bool
    ) -> None:
        """Record a failed attempt of a call retried under the submit deadline."""
        data: dict[str, Any] = {
            "exception": str(error),
            "exception_type": type(error).__name__,
            "attempt_count": attempt,
            "elapsed_time": elapsed,
            "should_retry": will_retry,
            "is_user_error": is_user_error(error),
        }
        status = getattr(error, "status_code", None)
        if isinstance(status, int):
            data["status_code"] = status
        severity = "WARNING" if will_retry or data["is_user_error"] else "ERROR"
        self.generic_event("InternalClientHolder.execute_with_retries.exception", data, severity)

    @property
    def queued(self) -> int:
        """Events waiting to be sent."""
        return len(self._queue)

    # -- flushing -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the flusher thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tinker-telemetry", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wait(self.flush_interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            self.flush_pending(deadline=None)
        self.flush_pending(deadline=time.monotonic() + CLOSE_DRAIN_SECONDS)

    def _take_batch(self) -> list[dict[str, Any]]:
        with self._lock:
            count = min(MAX_BATCH_SIZE, len(self._queue))
            batch = [self._queue.popleft() for _ in range(count)]
            self._sending = bool(batch)
            if not batch:
                self._idle.notify_all()
            return batch

    def flush_pending(self, *, deadline: float | None) -> None:
        """Send every queued event in batches; with a deadline, stop when it passes."""
        while True:
            if deadline is not None and time.monotonic() >= deadline:
                with self._lock:
                    self._sending = False
                    self._idle.notify_all()
                return
            batch = self._take_batch()
            if not batch:
                return
            self._send_batch(batch, deadline)

    def _send_batch(self, batch: list[dict[str, Any]], deadline: float | None) -> None:
        body = self._scrub(
            {
                "events": batch,
                "platform": platform.system(),
                "sdk_version": self.sdk_version,
                "session_id": self.session_id,
            }
        )
        attempts = 1 if deadline is not None else SEND_ATTEMPTS
        for attempt in range(1, attempts + 1):
            timeout = self._timeout
            if deadline is not None:
                timeout = min(timeout, max(deadline - time.monotonic(), 0.05))
            try:
                self._send(body, timeout, deadline is not None)
                return
            except Exception as exc:
                logger.warning(
                    "sending %d telemetry events failed (attempt %d of %d): %s",
                    len(batch),
                    attempt,
                    attempts,
                    exc,
                )
            if attempt < attempts and self._stop.wait(RETRY_PAUSE):
                break
        logger.warning("dropped %d telemetry events after failed sends", len(batch))

    def _scrub(self, body: dict[str, Any]) -> dict[str, Any]:
        if not self._secrets:
            return body
        text = json.dumps(body, default=str)
        if not any(secret in text for secret in self._secrets):
            return body
        for secret in self._secrets:
            text = text.replace(secret, "***")
        scrubbed: dict[str, Any] = json.loads(text)
        return scrubbed

    def flush(self, timeout: float = 5.0) -> bool:
        """Wake the flusher and wait up to `timeout` s for the queue to drain; True if it did."""
        self._wake.set()
        end = time.monotonic() + timeout
        with self._lock:
            while self._queue or self._sending:
                remaining = end - time.monotonic()
                if remaining <= 0 or self._thread is None or not self._thread.is_alive():
                    return False
                self._idle.wait(min(remaining, 0.1))
        return True

    def close(self, timeout: float = 1.5) -> None:
        """Stop the flusher after a final drain bounded by `timeout` seconds."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.debug("telemetry flusher still sending at close; left behind")
