"""Request plumbing shared by the clients: submit-and-track, future chaining, path checks.

Most mutating endpoints answer `{request_id}` and the result arrives through the runtime's
poller; `submit_and_track` does both steps.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from tinker._futures import APIFuture, QueueState
from tinker._retry import RetryConfig

if TYPE_CHECKING:
    from tinker._retry import RetryPolicy
    from tinker._runtime import Runtime, Traffic
    from tinker._telemetry import Telemetry

__all__ = [
    "ClientBase",
    "QueuePauseWarner",
    "check_retry_config",
    "check_tinker_path",
    "submit_and_track",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")

TINKER_SCHEME = "tinker://"


class ClientBase:
    """What every client shares: the runtime (session, pools, poller) it runs on."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    @property
    def holder(self) -> Runtime:
        """The runtime (session, pools, poller) this client runs on."""
        return self._runtime

    def get_telemetry(self) -> Telemetry | None:
        """The session's telemetry, or None when disabled."""
        return self._runtime.telemetry


def submit_and_track(
    runtime: Runtime,
    traffic: Traffic,
    path: str,
    body: object,
    *,
    request_type: str,
    result: type[T],
    retry: RetryPolicy,
    observer: Any | None = None,
    headers: Mapping[str, str] | None = None,
    on_expired: Callable[[], None] | None = None,
) -> APIFuture[T]:
    """POST `body` to a future-returning endpoint (blocking) and track its result."""
    submitted_at = time.monotonic()
    reply = runtime.call(traffic, "POST", path, body=body, retry=retry, headers=headers)
    if not isinstance(reply, Mapping) or not isinstance(reply.get("request_id"), str):
        raise ValueError(f"{path} answered without a request_id: {reply!r}")
    return runtime.track(
        reply["request_id"],
        request_type,
        result,
        observer=observer,
        submitted_at=submitted_at,
        on_expired=on_expired,
    )


def check_tinker_path(path: object, what: str = "path") -> str:
    """`path` itself if it is a `tinker://` string, else a ValueError/TypeError naming it."""
    if not isinstance(path, str):
        raise TypeError(f"{what} must be a str starting with 'tinker://', got {path!r}")
    if not path.startswith(TINKER_SCHEME) or len(path) == len(TINKER_SCHEME):
        raise ValueError(f"{what} must start with 'tinker://', got {path!r}")
    return path


def check_retry_config(retry_config: object) -> None:
    """TypeError unless `retry_config` is None or a RetryConfig."""
    if retry_config is not None and not isinstance(retry_config, RetryConfig):
        raise TypeError(f"retry_config must be a RetryConfig, got {type(retry_config).__name__}")


_PAUSE_REASONS = {
    QueueState.PAUSED_CAPACITY: "out of capacity",
    QueueState.UNKNOWN: "unknown",
}


class QueuePauseWarner:
    """Logs at most one warning per `interval` seconds while the server queue is paused."""

    def __init__(self, subject: str, rate_limit_reason: str, interval: float = 60.0) -> None:
        self._subject = subject
        self._rate_limit_reason = rate_limit_reason
        self._interval = interval
        self._last: float | None = None
        self._lock = threading.Lock()

    def __call__(self, queue_state: QueueState) -> None:
        if queue_state == QueueState.ACTIVE:
            return
        now = time.monotonic()
        with self._lock:
            if self._last is not None and now - self._last < self._interval:
                return
            self._last = now
        if queue_state == QueueState.PAUSED_RATE_LIMIT:
            reason = self._rate_limit_reason
        else:
            reason = _PAUSE_REASONS.get(queue_state, "unknown")
        logger.warning("%s Reason: %s", self._subject, reason)
