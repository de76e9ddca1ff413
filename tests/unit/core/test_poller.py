"""The poller: every outcome of a poll, poll headers, back-off, bounded workers."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from tinker._futures import APIFuture
from tinker._poller import (
    POLL_STEPS,
    Poller,
    PollJob,
    PollLimits,
    PollStep,
    QueuePauseWarner,
    QueueState,
    QueueStateObserver,
    poll_step,
)
from tinker._transport import Reply
from tinker._workers import ClientClosedError
from tinker.errors import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    NotFoundError,
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
        self.metadata_only: list[bool] = []
        self.lock = threading.Lock()

    def __call__(
        self, request_id: str, headers: Mapping[str, str], allow_metadata_only: bool
    ) -> Reply:
        with self.lock:
            self.calls.append((request_id, dict(headers)))
            self.metadata_only.append(allow_metadata_only)
            outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


class Recorder(QueueStateObserver):
    def __init__(self) -> None:
        self.states: list[QueueState] = []
        self.reasons: list[str | None] = []

    def on_queue_state_change(
        self, queue_state: QueueState, *, queue_state_reason: str | None = None
    ) -> None:
        self.states.append(queue_state)
        self.reasons.append(queue_state_reason)


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
    assert str(error) == "ForwardBackward request req-1 failed: target_tokens mismatch"
    assert "self." not in repr(error)


def test_result_that_does_not_structure_is_a_response_validation_error() -> None:
    def structure(body: Any) -> Any:
        raise TypeError("missing field 'metrics'")

    poller = Poller(ScriptedSender(reply(200, {"weird": 1})), max_workers=1, server="http://s")
    future = poller.track("r", "OptimStep", structure, type_name="OptimStepResponse")
    error = future.exception(timeout=5)
    assert isinstance(error, APIResponseValidationError)
    assert str(error) == (
        "The result of OptimStep request r from http://s does not match OptimStepResponse: "
        "missing field 'metrics'"
    )
    assert error.body == {"weird": 1}


def test_a_result_nested_too_deeply_is_a_response_validation_error() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]

    def structure(body: Any) -> Any:
        return repr(body)  # recursion, as structuring a hostile body would

    future = Poller(ScriptedSender(reply(200, deep)), max_workers=1).track("r", "Sample", structure)
    error = future.exception(timeout=5)
    assert isinstance(error, APIResponseValidationError)
    assert isinstance(error.__cause__, RecursionError)


def test_410_raises_retryable_exception_and_calls_on_expired() -> None:
    expired = threading.Event()
    future = track(ScriptedSender(reply(410, {"detail": "gone"})), on_expired=expired.set)
    error = future.exception(timeout=5)
    assert isinstance(error, RetryableException)
    assert str(error) == "Promise expired/broken for request req-1"
    assert expired.is_set()


@pytest.mark.parametrize("status", [401, 403, 409, 422])
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


def test_close_fails_pending_futures_with_client_closed_error() -> None:
    poller = Poller(lambda rid, h, m: reply(408), max_workers=1)
    future = poller.track("r", "Forward", lambda b: b)
    poller.close()
    error = future.exception(timeout=5)
    assert isinstance(error, ClientClosedError)
    assert str(error) == "the client was closed; Forward request r did not finish"
    late = poller.track("r2", "Forward", lambda b: b)
    assert isinstance(late.exception(timeout=0), ClientClosedError)


def test_worker_count_is_bounded_by_max_workers() -> None:
    release = threading.Event()
    lock = threading.Lock()
    concurrent_polls = [0, 0]

    def slow(request_id: str, headers: Mapping[str, str], _meta: bool) -> Reply:
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

    def send(request_id: str, headers: Mapping[str, str], _meta: bool) -> Reply:
        now[0] += 100.0  # every poll takes 100 s of (fake) time
        return reply(408) if now[0] < 1300 else reply(200, {"ok": 1})

    poller = Poller(send, max_workers=1, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="tinker"):
        assert poller.track("slow-1", "OptimStep", dict).result(timeout=10) == {"ok": 1}
    notices = [r.getMessage() for r in caplog.records if "still pending" in r.getMessage()]
    assert notices == [
        "request slow-1 (OptimStep) still pending after 600s and 6 polls (it fails after 7200s)",
        "request slow-1 (OptimStep) still pending after 1200s and 12 polls (it fails after 7200s)",
    ]


# -- what each answer means (the table a batch poller reuses) ------------------------------------


@pytest.mark.parametrize(
    ("status", "step"),
    [(200, PollStep.RESULT), (204, PollStep.RESULT), (400, PollStep.BAD_REQUEST),
     (401, PollStep.FATAL), (404, PollStep.FORGOTTEN), (408, PollStep.AGAIN),
     (409, PollStep.FATAL), (410, PollStep.EXPIRED), (429, PollStep.BACK_OFF),
     (500, PollStep.AGAIN), (503, PollStep.AGAIN), (302, PollStep.FATAL)],
)  # fmt: skip
def test_the_poll_step_of_each_status(status: int, step: PollStep) -> None:
    assert poll_step(status) is step
    assert set(POLL_STEPS) == {400, 402, 404, 408, 410, 429}


def _driven(sender: ScriptedSender, now: list[float], **limits: float) -> tuple[Poller, PollJob]:
    """A job polled by hand on a fake clock: `step()` returns the pause before the next poll."""
    poller = Poller(sender, max_workers=1, clock=lambda: now[0], server="http://gone:1",
                    limits=PollLimits(**limits))  # fmt: skip
    job = PollJob(
        future=APIFuture("r"),
        request_id="r",
        request_type="ForwardBackward",
        structure=lambda body: body,
        clock=lambda: now[0],
        server=poller.server,
        limits=poller.limits,
        on_unreachable=poller._unreachable,
    )
    return poller, job


def _step(poller: Poller, job: PollJob, now: list[float]) -> float | Exception | Any:
    """One poll: the pause before the next (the clock moves by it), or the final outcome."""
    try:
        return {"result": poller.poll_once(job)}
    except Exception as exc:
        pause = job.pause_after(exc)
        if pause is None:
            return exc
        now[0] += pause
        return pause


def test_429_on_a_poll_backs_off_exponentially_instead_of_failing() -> None:
    sender = ScriptedSender(
        reply(429), reply(429), reply(429), APIConnectionError(), reply(429), reply(408),
        reply(429), *[reply(429)] * 6, reply(200, {"done": 1}),
    )  # fmt: skip
    now = [0.0]
    poller, job = _driven(sender, now)
    outcomes = [_step(poller, job, now) for _ in range(14)]
    # min(2**k, 30) s, k counting 429s and unanswered polls in a row; any other answer resets k.
    assert outcomes == [1.0, 2.0, 4.0, 8.0, 16.0, 0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0,
                        {"result": {"done": 1}}]  # fmt: skip


def test_400_on_a_poll_is_retried_three_times_and_a_408_resets_the_count() -> None:
    sender = ScriptedSender(
        reply(400), reply(400), reply(400), reply(408), reply(400), reply(400), reply(400),
        reply(400, {"detail": "bad"}),
    )  # fmt: skip
    now = [0.0]
    poller, job = _driven(sender, now)
    outcomes = [_step(poller, job, now) for _ in range(8)]
    assert outcomes[:7] == [0.0] * 7
    error = outcomes[7]
    assert isinstance(error, ValueError)
    assert "status code 400" in str(error)


def test_404_after_a_server_restart_is_a_typed_error_saying_how_to_resume() -> None:
    now = [0.0]
    poller, job = _driven(ScriptedSender(reply(404, {"detail": "Future not found"})), now)
    error = _step(poller, job, now)
    assert type(error) is NotFoundError
    assert error.status_code == 404
    assert str(error) == (
        "http://gone:1 does not know ForwardBackward request r (HTTP 404): the server was "
        "probably restarted, and the result is lost. Resume from your last checkpoint: "
        "ServiceClient.create_training_client_from_state_with_optimizer(<its "
        "tinker://.../weights/... path>)."
    )


def test_a_server_that_stops_answering_fails_the_future_naming_what_was_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    refused = APIConnectionError("Cannot connect to http://gone:1/api/v1/retrieve_future")
    now = [0.0]
    poller, job = _driven(ScriptedSender(*[refused] * 20), now, unreachable_after=100.0)
    with caplog.at_level(logging.WARNING, logger="tinker"):
        outcomes = [_step(poller, job, now) for _ in range(9)]
    # 1 + 2 + 4 + ... + 32 = 63 s, then the pause is cut at the 100 s bound and the next poll
    # fails without being sent.
    assert outcomes[:8] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 9.0]
    error = outcomes[8]
    assert type(error) is APIConnectionError
    assert str(error) == (
        "Lost contact with http://gone:1: polls of ForwardBackward request r got no answer for "
        "100 s (last error: Cannot connect to http://gone:1/api/v1/retrieve_future); its "
        "result is lost. Resume from your last checkpoint: ServiceClient."
        "create_training_client_from_state_with_optimizer(<its tinker://.../weights/... path>)."
    )
    assert job.iteration == 8  # the ninth poll was not sent
    # One warning per 30 s for the whole poller, not one per failed poll.
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 4  # at 0, 31, 61 and 91 s
    assert warnings[0].startswith("no answer from http://gone:1 to polls of 0 pending requests")


def test_every_future_has_an_overall_deadline() -> None:
    now = [0.0]
    sender = ScriptedSender(*[reply(408)] * 5)

    def slow_408(request_id: str, headers: Mapping[str, str], _meta: bool) -> Reply:
        now[0] += 45.0  # a long poll answered 408 after 45 s
        return sender(request_id, headers, _meta)

    poller, job = _driven(ScriptedSender(), now, deadline=100.0)
    poller._send = slow_408
    outcomes = [_step(poller, job, now) for _ in range(4)]
    assert outcomes[:3] == [0.0, 0.0, 0.0]
    error = outcomes[3]
    assert type(error) is APITimeoutError
    assert str(error).startswith(
        "ForwardBackward request r at http://gone:1 did not finish within 100 s (the client's "
        "future_timeout); its result is lost. Resume from your last checkpoint"
    )
    assert len(sender.calls) == 3


def test_the_bounds_also_apply_to_a_tracked_future(caplog: pytest.LogCaptureFixture) -> None:
    poller = Poller(
        ScriptedSender(*[APIConnectionError("refused")] * 50),
        max_workers=1,
        server="http://gone:1",
        limits=PollLimits(unreachable_after=0.3),
    )
    with caplog.at_level(logging.CRITICAL, logger="tinker"), patch_backoff(0.05):
        error = poller.track("s", "Sample", dict).exception(timeout=5)
    assert type(error) is APIConnectionError
    assert "Create a new SamplingClient" in str(error)


@contextlib.contextmanager
def patch_backoff(seconds: float) -> Iterator[None]:
    from tinker import _poller
    from tinker._retry import Backoff

    saved = _poller.POLL_BACKOFF
    _poller.POLL_BACKOFF = Backoff(initial=seconds, maximum=seconds)
    try:
        yield
    finally:
        _poller.POLL_BACKOFF = saved


def test_the_servers_queue_state_reason_reaches_the_observer_and_the_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    observer = Recorder()
    paused = {"type": "try_again", "queue_state": "paused_capacity"}
    sender = ScriptedSender(
        reply(408, {**paused, "queue_state_reason": "GPUs are busy"}),
        reply(200, {**paused, "queue_state_reason": "still busy"}),
        reply(200, {"type": "try_again"}),  # no queue state: nothing to report
        reply(200, {"done": 1}),
    )
    assert track(sender, observer=observer).result(timeout=5) == {"done": 1}
    assert observer.reasons == ["GPUs are busy", "still busy"]
    warner = QueuePauseWarner("Training is paused.", "rate limited")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tinker._poller"):
        warner(QueueState.PAUSED_CAPACITY, "GPUs are busy")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == ["Training is paused. Reason: GPUs are busy"]
