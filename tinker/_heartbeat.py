"""The session heartbeat: one daemon thread tells the service every 10 s that the session lives.

The service ends a session that stops beating; after 120 s without a successful beat every failure
is logged as a warning, so a dying connection does not go unnoticed. A beat is one attempt
(`POST /api/v1/session_heartbeat {"session_id": ...}`, plus `"type"` in the 0.38 protocol; 10 s
timeout, no retries): the next beat is the retry. An HTTP 410 says the session has finished on
the server: the beats stop for good.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from tinker._calls import ApiCall
from tinker._retry import NO_RETRY
from tinker._transport import Traffic
from tinker.errors import APIStatusError

__all__ = ["Heartbeat", "heartbeat_call"]

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 10.0
HEARTBEAT_WARN_AFTER = 120.0


def heartbeat_call(session_id: str, timeout: float, *, typed: bool = False) -> ApiCall:
    """The call of one heartbeat (`typed`: the 0.38 body, which names its type)."""
    body = {"session_id": session_id}
    if typed:
        body["type"] = "session_heartbeat"
    return ApiCall(
        sdk_method=None,  # background traffic
        traffic=Traffic.SESSION,
        method="POST",
        path="/api/v1/session_heartbeat",
        body=body,
        timeout=timeout,
        retry=NO_RETRY,
    )


class Heartbeat:
    """Sends `beat()` every 10 s on a daemon thread; warns once 120 s pass without success."""

    def __init__(
        self,
        beat: Callable[[], None],
        *,
        session_id: str,
        interval: float = HEARTBEAT_INTERVAL,
        warn_after: float = HEARTBEAT_WARN_AFTER,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        self._beat = beat
        self.session_id = session_id
        self.interval = interval
        self.warn_after = warn_after
        self._clock = clock
        self._stop = threading.Event()
        self._wait = wait if wait is not None else self._stop.wait
        self.last_success = clock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the heartbeat thread (the first beat goes out one interval from now)."""
        self._thread = threading.Thread(target=self._run, name="tinker-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._wait(self.interval) and not self._stop.is_set():
            self.beat_once()

    def beat_once(self) -> bool:
        """Send one heartbeat; failures are logged, never raised. True on success."""
        try:
            self._beat()
        except APIStatusError as exc:
            if exc.status_code != 410:
                return self._failed(exc)
            logger.info("Session %s has finished on the server; heartbeats stop", self.session_id)
            self.stop()
            return False
        except Exception as exc:
            return self._failed(exc)
        self.last_success = self._clock()
        return True

    def _failed(self, exc: Exception) -> bool:
        """Log a failed beat: a warning once beats have failed for `warn_after` seconds."""
        silent_for = self._clock() - self.last_success
        if silent_for > self.warn_after:
            logger.warning(
                "Session %s: no successful heartbeat for %.0fs (last error: %s). The "
                "connection may be unreliable. If this persists, the session will be "
                "terminated.",
                self.session_id,
                silent_for,
                exc,
            )
        else:
            logger.debug("heartbeat failed: %s", exc)
        return False

    def stop(self) -> None:
        """Stop at once (the thread wakes from its wait)."""
        self._stop.set()
