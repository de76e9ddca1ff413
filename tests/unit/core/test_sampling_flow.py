"""Sampling flow control: the shared 429 back-off, in-flight bounds, sample-level retries."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

import pytest
from core_fake_service import FakeService, FakeTime, RuntimeFactory, Scripted

from tinker._futures import APIFuture, chain, completed, failed
from tinker._retry import SAMPLE_SUBMIT, RetryConfig
from tinker._runtime import RuntimeOptions, Traffic
from tinker._sample_retry import SampleRetryHandler
from tinker._throttle import SampleLimiter, Timers
from tinker.errors import APIConnectionError, RateLimitError, RequestFailedError, status_error
from tinker.lib.retryable_exception import RetryableException


def rate_limited() -> RateLimitError:
    error = status_error(429, {"detail": "slow down"})
    assert isinstance(error, RateLimitError)
    return error


def test_a_429_sets_a_shared_one_second_window_that_every_sampler_honours() -> None:
    fake = FakeTime()
    limiter = SampleLimiter(clock=fake.clock, sleep=fake.sleep)
    attempts: list[float] = []

    def attempt() -> str:
        attempts.append(fake.now)
        if len(attempts) < 3:
            raise rate_limited()
        return "request-id"

    assert limiter.submit(attempt) == "request-id"
    assert attempts == [0.0, 1.0, 2.0]
    assert fake.sleeps == [1.0, 1.0]
    # Another sampler submitting right after a 429 waits for the same window.
    limiter.back_off()
    hit_at = fake.now
    fake.now += 0.25
    limiter.submit(lambda: attempts.append(fake.now))
    assert attempts[-1] == pytest.approx(hit_at + 1.0)
    assert fake.sleeps[-1] == pytest.approx(0.75)


def test_long_back_off_is_slept_in_one_second_steps() -> None:
    fake = FakeTime()
    limiter = SampleLimiter(clock=fake.clock, sleep=fake.sleep, backoff_seconds=1.0)
    limiter._backoff_until = 2.5
    limiter.wait_for_turn()
    assert fake.sleeps == [1.0, 1.0, 0.5]


def test_other_errors_pass_through_the_limiter() -> None:
    limiter = SampleLimiter()

    def attempt() -> None:
        raise status_error(500, None)

    with pytest.raises(Exception, match="500"):
        limiter.submit(attempt)
    assert limiter.backoff_remaining() == 0.0 and limiter.in_flight == 0


def test_in_flight_submits_are_bounded() -> None:
    limiter = SampleLimiter(max_in_flight=3)
    release = threading.Event()
    peak = [0]
    lock = threading.Lock()

    def attempt() -> None:
        with lock:
            peak[0] = max(peak[0], limiter.in_flight)
        release.wait(5)

    threads = [threading.Thread(target=limiter.submit, args=(attempt,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    threading.Event().wait(0.1)
    assert limiter.in_flight == 3
    release.set()
    for thread in threads:
        thread.join(5)
    assert peak[0] == 3 and limiter.in_flight == 0
    with pytest.raises(ValueError):
        SampleLimiter(max_in_flight=0)


class ManualTimers(Timers):
    """Timers whose callbacks the test runs by hand, with their requested delays."""

    def __init__(self) -> None:
        super().__init__()
        self.scheduled: list[tuple[float, Callable[[], None]]] = []

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        self.scheduled.append((delay, fn))

    def run_next(self) -> float:
        delay, fn = self.scheduled.pop(0)
        fn()
        return delay


def handler(config: RetryConfig, fake: FakeTime, timers: ManualTimers) -> SampleRetryHandler:
    return SampleRetryHandler(config, timers=timers, clock=fake.clock)


def test_retryable_failures_are_resubmitted_with_backoff_until_success() -> None:
    fake, timers = FakeTime(), ManualTimers()
    config = RetryConfig(jitter_factor=0.0, progress_timeout=0)
    outcomes: list[Any] = [
        failed(RetryableException("Promise expired/broken for request r")),
        failed(APIConnectionError()),
        failed(status_error(503, None)),
        failed(status_error(409, None)),
        completed("tokens"),
    ]
    calls = []

    def attempt() -> APIFuture[Any]:
        calls.append(1)
        result: APIFuture[Any] = outcomes.pop(0)
        return result

    future = handler(config, fake, timers).execute(attempt)
    delays = [timers.run_next() for _ in range(4)]
    assert delays == [0.5, 1.0, 2.0, 4.0]
    assert future.result(0) == "tokens" and len(calls) == 5


@pytest.mark.parametrize(
    "error",
    [RequestFailedError("x", request_id="r"), ValueError("Error retrieving result"),
     status_error(400, None)],
)  # fmt: skip
def test_non_retryable_failures_reach_the_caller(error: Exception) -> None:
    fake, timers = FakeTime(), ManualTimers()
    future = handler(RetryConfig(progress_timeout=0), fake, timers).execute(lambda: failed(error))
    assert future.exception(0) is error and timers.scheduled == []


def test_no_progress_for_the_timeout_fails_requests_in_flight() -> None:
    fake, timers = FakeTime(), ManualTimers()
    config = RetryConfig(progress_timeout=1800.0)
    retry = handler(config, fake, timers)
    stuck: APIFuture[Any] = APIFuture()
    future = retry.execute(lambda: stuck)
    delay, watchdog = timers.scheduled.pop(0)
    assert delay == 1800.0
    fake.now = 1000.0
    watchdog()  # not yet: re-armed for the remaining time
    assert not future.done()
    delay, watchdog = timers.scheduled.pop(0)
    assert delay == pytest.approx(800.0)
    fake.now = 1800.5
    watchdog()
    error = future.exception(0)
    assert isinstance(error, APIConnectionError)
    assert str(error) == "No progress made in 1800.0s. Requests appear to be stuck."
    assert stuck.cancelled() and retry.in_flight == 0


def test_success_counts_as_progress_for_other_requests() -> None:
    fake, timers = FakeTime(), ManualTimers()
    retry = handler(RetryConfig(progress_timeout=100.0), fake, timers)
    slow: APIFuture[Any] = APIFuture()
    quick: APIFuture[Any] = APIFuture()
    slow_result = retry.execute(lambda: slow)
    retry.execute(lambda: quick)
    fake.now = 90.0
    quick.set_result("ok")
    fake.now = 150.0
    _, watchdog = timers.scheduled.pop(0)
    watchdog()
    assert not slow_result.done()  # 60 s since the last success
    slow.set_result("late")
    assert slow_result.result(0) == "late"


def test_at_most_max_connections_run_and_the_rest_queue() -> None:
    fake, timers = FakeTime(), ManualTimers()
    retry = handler(RetryConfig(max_connections=2, progress_timeout=0), fake, timers)
    inners = [APIFuture[Any]() for _ in range(5)]
    started: list[int] = []

    def attempt_for(index: int) -> Callable[[], APIFuture[Any]]:
        def attempt() -> APIFuture[Any]:
            started.append(index)
            return inners[index]

        return attempt

    outs = [retry.execute(attempt_for(i)) for i in range(5)]
    assert started == [0, 1] and retry.in_flight == 2
    inners[1].set_result(1)
    assert started == [0, 1, 2]
    inners[0].set_exception(RequestFailedError("x", request_id="r"))
    assert started == [0, 1, 2, 3]
    for index in (2, 3):
        inners[index].set_result(index)
    assert started == [0, 1, 2, 3, 4]
    inners[4].set_result(4)
    assert [o.result(0) for o in outs if o.exception(0) is None] == [1, 2, 3, 4]
    assert retry.in_flight == 0


def test_timers_run_callbacks_in_time_order() -> None:
    timers = Timers()
    ran: list[str] = []
    done = threading.Event()
    timers.call_later(0.05, lambda: (ran.append("late"), done.set()))
    timers.call_later(0.0, lambda: ran.append("now"))
    assert done.wait(5)
    assert ran == ["now", "late"]
    timers.close()
    timers.call_later(0.0, lambda: ran.append("after close"))
    assert timers.pending == 0


def test_sample_pipeline_resubmits_after_429_and_after_an_expired_future(
    service: FakeService, make_runtime: RuntimeFactory
) -> None:
    fake = FakeTime()
    runtime = make_runtime(
        options=RuntimeOptions(heartbeat=False, clock=fake.clock, sleep=fake.sleep)
    )
    service.push("/api/v1/asample", Scripted(429, {"detail": "busy"}))
    expired = {"req-0"}

    def intercept(path: str, body: Any) -> Scripted | None:
        if path == "/api/v1/retrieve_future" and body["request_id"] in expired:
            expired.discard(body["request_id"])
            return Scripted(410, {"detail": "expired"})
        return None

    service.intercept = intercept
    seq_ids = itertools.count()

    def submit() -> str:
        request_id: str = runtime.call(
            Traffic.SAMPLE,
            "POST",
            "/api/v1/asample",
            body={"seq_id": next(seq_ids)},
            retry=SAMPLE_SUBMIT,
            headers={"X-Tinker-Sampling-Backpressure": "1"},
        )["request_id"]
        return request_id

    def attempt() -> APIFuture[Any]:
        submitted = runtime.submit(runtime.sample_limiter.submit, submit)
        return chain(submitted, lambda rid: runtime.track(rid, "Sample", None))

    retrier = runtime.sample_retrier(RetryConfig(retry_delay_base=0.0))
    result = retrier.execute(attempt).result(timeout=20)
    assert result == {"echo": {"seq_id": 2}}
    asamples = service.seen("/api/v1/asample")
    assert [r.body["seq_id"] for r in asamples] == [0, 1, 2]
    assert all(r.headers["X-Tinker-Sampling-Backpressure"] == "1" for r in asamples)
    assert len({r.headers["X-Idempotency-Key"] for r in asamples}) == 3
    assert 1.0 in fake.sleeps  # the shared back-off after the 429
    assert retrier.in_flight == 0
