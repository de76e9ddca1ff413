"""The poller: every outcome of a poll, poll headers, back-off, bounded workers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from tinker._futures import APIFuture
from tinker._poller import Poller, PollJob, QueueState, QueueStateObserver
from tinker._transport import Reply
from tinker.errors import (
    APIConnectionError,
    APITimeoutError,
    RequestErrorCategory,
    RequestFailedError,
)
from tinker.lib.retryable_exception import RetryableException


def reply(status: int, body: Any = None) -> Reply:
    return Reply(status_code=status, headers={}, body=body, is_json=True, url="u")


class ScriptedSender:
    """Answers polls from a script; records the headers of every poll."""

    def __init__(self, *outcomes: Reply | Exception) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()

    def __call__(self, request_id: str, headers: Mapping[str, str]) -> Reply:
        with self.lock:
            self.calls.append((request_id, dict(headers)))
            outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


class Recorder(QueueStateObserver):
    def __init__(self) -> None:
        self.states: list[QueueState] = []

    def on_queue_state_change(self, queue_state: QueueState) -> None:
        self.states.append(queue_state)


def track(sender: ScriptedSender, **kwargs: Any) -> APIFuture[Any]:
    poller = Poller(sender, max_workers=2)
    return poller.track("req-1", "ForwardBackward", lambda body: body, **kwargs)


def test_repolls_after_try_again_408_and_5xx_then_resolves() -> None:
    observer = Recorder()
    sender = ScriptedSender(
        reply(200, {"type": "try_again", "request_id": "req-1"}),
        reply(408, {"type": "try_again", "queue_state": "paused_capacity"}),
        reply(408, {"queue_state": "paused_rate_limit"}),
        reply(408, {"queue_state": "active"}),
        reply(408, {"queue_state": "weird"}),
        reply(408, "not json"),
        reply(502, {"detail": "bad gateway"}),
        reply(200, {"loss": 1.5}),
    )
    future = track(sender, observer=observer, submitted_at=None)
    assert future.result(timeout=5) == {"loss": 1.5}
    assert observer.states == [
        QueueState.PAUSED_CAPACITY,
        QueueState.PAUSED_RATE_LIMIT,
        QueueState.ACTIVE,
        QueueState.UNKNOWN,
        QueueState.UNKNOWN,
    ]
    iterations = [headers["X-Tinker-Request-Iteration"] for _, headers in sender.calls]
    assert iterations == [str(i) for i in range(8)]
    assert all(h["X-Tinker-Request-Type"] == "ForwardBackward" for _, h in sender.calls)
    assert all(h["X-Stainless-Raw-Response"] == "raw" for _, h in sender.calls)
    assert {request_id for request_id, _ in sender.calls} == {"req-1"}


def test_roundtrip_header_only_on_the_first_poll() -> None:
    sender = ScriptedSender(reply(408), reply(200, {"ok": 1}))
    clock_value = [100.0]
    poller = Poller(sender, max_workers=1, clock=lambda: clock_value[0])
    future = poller.track("r", "Sample", dict, submitted_at=99.75)
    assert future.result(timeout=5) == {"ok": 1}
    first, second = (headers for _, headers in sender.calls)
    assert first["X-Tinker-Create-Promise-Roundtrip-Time"] == "0.25"
    assert "X-Tinker-Create-Promise-Roundtrip-Time" not in second


@pytest.mark.parametrize(
    ("category", "expected"),
    [("user", RequestErrorCategory.User), ("server", RequestErrorCategory.Server),
     ("other", RequestErrorCategory.Unknown), (None, RequestErrorCategory.Unknown)],
)  # fmt: skip
def test_error_body_fails_with_request_failed_error(
    category: str | None, expected: RequestErrorCategory
) -> None:
    body: dict[str, Any] = {"error": "target_tokens mismatch"}
    if category is not None:
        body["category"] = category
    future = track(ScriptedSender(reply(200, body)))
    error = future.exception(timeout=5)
    assert isinstance(error, RequestFailedError)
    assert error.category is expected
    assert error.request_id == "req-1"
    assert str(error).startswith("Request failed: target_tokens mismatch for ")


def test_result_that_does_not_structure_is_a_value_error() -> None:
    def structure(body: Any) -> Any:
        raise TypeError("missing field 'metrics'")

    poller = Poller(ScriptedSender(reply(200, {"weird": 1})), max_workers=1)
    future = poller.track("r", "OptimStep", structure)
    error = future.exception(timeout=5)
    assert isinstance(error, ValueError)
    assert str(error) == "Error retrieving result: missing field 'metrics'"


def test_410_raises_retryable_exception_and_calls_on_expired() -> None:
    expired = threading.Event()
    future = track(ScriptedSender(reply(410, {"detail": "gone"})), on_expired=expired.set)
    error = future.exception(timeout=5)
    assert isinstance(error, RetryableException)
    assert str(error) == "Promise expired/broken for request req-1"
    assert expired.is_set()


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 429])
def test_other_4xx_is_a_fatal_value_error(status: int) -> None:
    sender = ScriptedSender(reply(status, {"detail": "x"}))
    error = track(sender).exception(timeout=5)
    assert isinstance(error, ValueError)
    assert str(error).startswith("Error retrieving result: Error code: ")
    assert f"status code {status}" in str(error)
    assert len(sender.calls) == 1


def test_connection_errors_back_off_exponentially_and_reset_on_a_response() -> None:
    sender = ScriptedSender(
        APIConnectionError(), APITimeoutError(), APIConnectionError(), reply(503),
        APIConnectionError(), reply(200, {"done": True}),
    )  # fmt: skip
    poller = Poller(sender, max_workers=1)
    job_future: APIFuture[Any] = APIFuture("r")
    job = PollJob(
        future=job_future,
        request_id="r",
        request_type="Forward",
        structure=lambda body: body,
        type_name="dict",
    )

    def poll_once() -> float | None:
        """The pause before the next poll (None: resolved)."""
        try:
            job_future.set_result(poller.poll_once(job))
        except Exception as exc:
            return job.pause_after(exc)
        return None

    delays = [poll_once() for _ in range(6)]
    assert delays == [1.0, 2.0, 4.0, 0.0, 1.0, None]
    assert job_future.result(0) == {"done": True}


def test_cancelled_future_is_dropped_without_polling() -> None:
    sender = ScriptedSender()
    poller = Poller(sender, max_workers=1)
    gate = threading.Event()
    poller.pool._cond.acquire()  # hold the queue so the job cannot be taken yet
    try:
        future = poller.track("r", "Forward", lambda b: b)
        future.cancel()
        gate.set()
    finally:
        poller.pool._cond.release()
    for _ in range(100):
        if poller.pending == 0:
            break
        threading.Event().wait(0.01)
    assert poller.pending == 0 and sender.calls == []


def test_close_fails_pending_futures() -> None:
    poller = Poller(lambda rid, h: reply(408), max_workers=1)
    future = poller.track("r", "Forward", lambda b: b)
    poller.close()
    assert "client closed" in str(future.exception(timeout=5))
    late = poller.track("r2", "Forward", lambda b: b)
    assert "client closed" in str(late.exception(timeout=0))


def test_worker_count_is_bounded_by_max_workers() -> None:
    release = threading.Event()
    lock = threading.Lock()
    concurrent_polls = [0, 0]

    def slow(request_id: str, headers: Mapping[str, str]) -> Reply:
        with lock:
            concurrent_polls[0] += 1
            concurrent_polls[1] = max(concurrent_polls)
        release.wait(5)
        with lock:
            concurrent_polls[0] -= 1
        return reply(200, {"id": request_id})

    poller = Poller(slow, max_workers=4)
    futures = [poller.track(f"r{i}", "Sample", lambda b: b) for i in range(200)]
    assert poller.worker_count == 4
    release.set()
    assert [f.result(timeout=10)["id"] for f in futures] == [f"r{i}" for i in range(200)]
    assert concurrent_polls[1] <= 4
    poller.close()


def test_a_long_pending_request_is_logged_every_ten_minutes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]

    def send(request_id: str, headers: Mapping[str, str]) -> Reply:
        now[0] += 100.0  # every poll takes 100 s of (fake) time
        return reply(408) if now[0] < 1300 else reply(200, {"ok": 1})

    poller = Poller(send, max_workers=1, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="tinker"):
        assert poller.track("slow-1", "OptimStep", dict).result(timeout=10) == {"ok": 1}
    notices = [r.getMessage() for r in caplog.records if "still pending" in r.getMessage()]
    assert notices == [
        "request slow-1 (OptimStep) still pending after 600s and 6 polls",
        "request slow-1 (OptimStep) still pending after 1200s and 12 polls",
    ]
