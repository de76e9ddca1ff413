"""Sampling flow control: the shared 429 back-off, in-flight bounds that bind without holding
threads, the progress watchdog, and sample-level retries."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from core_helpers import RuntimeFactory
from support.fake_service import FakeService, FakeTime, Reply

from tinker._calls import ApiCall
from tinker._futures import APIFuture, completed, failed, flatten
from tinker._limits import InFlightLimit, SampleLimiter, SampleRetries
from tinker._retry import SAMPLE_SUBMIT, RetryConfig, RetryExecutor
from tinker._runtime import RuntimeOptions
from tinker._transport import Traffic
from tinker.errors import APIConnectionError, RateLimitError, RequestFailedError, status_error
from tinker.lib.retryable_exception import RetryableException


def rate_limited() -> RateLimitError:
    error = status_error(429, {"detail": "slow down"})
    assert isinstance(error, RateLimitError)
    return error


class ManualTimers:
    """Timers whose callbacks the test runs by hand, with their requested delays."""

    def __init__(self) -> None:
        self.scheduled: list[tuple[float, Callable[[], None]]] = []

    def call_later(self, delay: float, fn: Callable[[], None], on_drop: Any = None) -> bool:
        self.scheduled.append((delay, fn))
        return True

    def run_next(self) -> float:
        delay, fn = self.scheduled.pop(0)
        fn()
        return delay


def limited_sampler(
    fake: FakeTime, limiter: SampleLimiter, config: RetryConfig | None = None
) -> SampleRetries:
    """Sample-level retries under `limiter`, on fake time."""
    return SampleRetries(
        config or RetryConfig(progress_timeout=0),
        executor=RetryExecutor(timers=fake),
        timers=fake,
        clock=fake.clock,
        on_rate_limited=limiter.back_off,
    )


def test_a_429_sets_a_shared_one_second_window_that_every_sampler_honours() -> None:
    fake = FakeTime()
    limiter = SampleLimiter(clock=fake.clock, timers=fake)
    attempts: list[float] = []

    def attempt() -> APIFuture[str]:
        attempts.append(fake.now)
        if len(attempts) < 3:
            return failed(rate_limited())
        return completed("request-id")

    sampler = limited_sampler(fake, limiter)
    result = sampler.run(lambda: limiter.admit(attempt))
    assert result.result(0) == "request-id"
    assert attempts == [0.0, 1.0, 2.0]
    assert fake.sleeps == [1.0, 1.0]
    # Another sampler submitting right after a 429 waits for the same window.
    limiter.back_off()
    hit_at = fake.now
    fake.now += 0.25
    limiter.admit(lambda: completed(attempts.append(fake.now))).result(0)
    assert attempts[-1] == pytest.approx(hit_at + 1.0)
    assert fake.sleeps[-1] == pytest.approx(0.75)


def test_long_back_off_is_waited_in_one_second_steps() -> None:
    fake = FakeTime()
    limiter = SampleLimiter(clock=fake.clock, timers=fake, backoff_seconds=1.0)
    limiter._backoff_until = 2.5
    assert limiter.window_passed().done()
    assert fake.sleeps == [1.0, 1.0, 0.5]


def test_other_errors_pass_through_the_limiter() -> None:
    fake = FakeTime()
    limiter = SampleLimiter(clock=fake.clock, timers=fake)
    submitted = limiter.admit(lambda: failed(status_error(500, None)))
    with pytest.raises(Exception, match="500"):
        submitted.result(0)
    assert limiter.backoff_remaining() == 0.0 and limiter.in_flight == 0


def test_in_flight_submits_are_bounded_and_the_rest_wait_without_a_thread() -> None:
    timers = ManualTimers()  # holds the periodic "still waiting" notice
    limiter = SampleLimiter(max_in_flight=3, timers=timers)
    peak = [0]
    pending = [APIFuture[None]() for _ in range(8)]
    started: list[int] = []

    def attempt(index: int) -> Callable[[], APIFuture[None]]:
        def start() -> APIFuture[None]:
            peak[0] = max(peak[0], limiter.in_flight)
            started.append(index)
            return pending[index]

        return start

    admitted = [limiter.admit(attempt(i)) for i in range(8)]  # returns at once, no thread
    assert limiter.in_flight == 3 and started == [0, 1, 2]
    for index in range(8):
        pending[index].set_result(None)
    assert all(future.done() for future in admitted)
    assert peak[0] == 3 and limiter.in_flight == 0 and started == list(range(8))
    with pytest.raises(ValueError):
        SampleLimiter(max_in_flight=0, timers=timers)


def test_waiters_of_a_full_limit_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    scheduled: list[Callable[[], None]] = []

    class Timers:
        def call_later(self, delay: float, fn: Callable[[], None], on_drop: Any = None) -> bool:
            scheduled.append(fn)
            return True

    now = [0.0]
    limit = InFlightLimit(1, what="sample submits", timers=Timers(), clock=lambda: now[0])
    blocker: APIFuture[None] = APIFuture()
    limit.run(lambda: blocker)
    limit.run(lambda: completed(None))
    assert limit.waiting == 1 and len(scheduled) == 1
    now[0] = 30.0
    scheduled.pop()()
    assert "1 sample submits waiting for a free slot, the oldest for 30s (1 of 1 in flight)" in (
        caplog.text
    )
    blocker.set_result(None)
    assert limit.waiting == 0 and limit.in_flight == 0
    scheduled.pop()()  # nothing waits any more: the notice stops
    assert scheduled == []


def handler(config: RetryConfig, fake: FakeTime, timers: ManualTimers) -> SampleRetries:
    executor = RetryExecutor(timers=timers)
    return SampleRetries(config, executor=executor, timers=timers, clock=fake.clock)


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

    future = handler(config, fake, timers).run(attempt)
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
    future = handler(RetryConfig(progress_timeout=0), fake, timers).run(lambda: failed(error))
    assert future.exception(0) is error and timers.scheduled == []


def test_no_progress_for_the_timeout_fails_requests_in_flight() -> None:
    fake, timers = FakeTime(), ManualTimers()
    config = RetryConfig(progress_timeout=1800.0)
    retry = handler(config, fake, timers)
    stuck: APIFuture[Any] = APIFuture()
    future = retry.run(lambda: stuck)
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
    slow_result = retry.run(lambda: slow)
    retry.run(lambda: quick)
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

    outs = [retry.run(attempt_for(i)) for i in range(5)]
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


def test_sample_pipeline_resubmits_after_429_and_after_an_expired_future(
    service: FakeService, make_runtime: RuntimeFactory
) -> None:
    fake = FakeTime()
    runtime = make_runtime(
        options=RuntimeOptions(heartbeat=False, clock=fake.clock, sleep=fake.sleep)
    )
    service.push("/api/v1/asample", Reply(429, {"detail": "busy"}))
    expired = {"req-0"}

    def intercept(path: str, body: Any) -> Reply | None:
        if path == "/api/v1/retrieve_future" and body["request_id"] in expired:
            expired.discard(body["request_id"])
            return Reply(410, {"detail": "expired"})
        return None

    service.intercept = intercept
    seq_ids = itertools.count()

    def submit() -> APIFuture[APIFuture[Any]]:
        call = ApiCall(
            traffic=Traffic.SAMPLE,
            method="POST",
            path="/api/v1/asample",
            body={"seq_id": next(seq_ids)},
            retry=SAMPLE_SUBMIT,
            headers={"X-Tinker-Sampling-Backpressure": "1"},
            poll_as="Sample",
        )
        return runtime.submit(call)

    def attempt() -> APIFuture[Any]:
        return flatten(runtime.sample_limiter.admit(submit))

    retrier = runtime.sample_retries(RetryConfig(retry_delay_base=0.0))
    result = retrier.run(attempt).result(timeout=20)
    assert result == {"echo": {"seq_id": 2}}
    asamples = service.seen("/api/v1/asample")
    assert [r.body["seq_id"] for r in asamples] == [0, 1, 2]
    assert all(r.headers["X-Tinker-Sampling-Backpressure"] == "1" for r in asamples)
    assert len({r.headers["X-Idempotency-Key"] for r in asamples}) == 3
    assert 1.0 in fake.sleeps  # the shared back-off after the 429
    assert retrier.in_flight == 0


def test_a_byte_budget_binds_and_an_oversized_request_goes_alone() -> None:
    budget = InFlightLimit(100 + 1, what="forward_backward submits")  # a budget of 100 bytes
    sends: list[APIFuture[str]] = []
    started: list[str] = []

    def send(name: str) -> APIFuture[str]:
        started.append(name)
        sends.append(APIFuture())
        return sends[-1]

    a = budget.run(lambda: send("a"), weight=60)
    b = budget.run(lambda: send("b"), weight=60)  # 40 left: it goes, overdrawing the budget
    c = budget.run(lambda: send("c"), weight=10)  # overdrawn: it waits, holding no thread
    assert started == ["a", "b"] and budget.waiting == 1 and budget.in_flight == 120
    sends[0].set_result("a")
    assert started == ["a", "b", "c"]  # 60 + 10 held, within the budget again
    huge = budget.run(lambda: send("huge"), weight=1000)  # larger than the whole budget
    after = budget.run(lambda: send("after"), weight=1)
    assert started == ["a", "b", "c", "huge"] and budget.waiting == 1
    sends[1].set_result("b")
    sends[2].set_result("c")
    assert started[-1] == "huge" and budget.in_flight == 1000  # it holds the budget alone
    sends[3].set_result("huge")
    assert started[-1] == "after" and budget.in_flight == 1
    sends[4].set_result("after")
    assert [f.result() for f in (a, b, c, huge, after)] == ["a", "b", "c", "huge", "after"]
    assert budget.in_flight == 0 and budget.waiting == 0


def test_a_huge_request_on_an_idle_budget_is_not_held_back() -> None:
    budget = InFlightLimit(10 + 1, what="sample submits")
    assert budget.run(lambda: completed("big"), weight=10_000).result(timeout=1) == "big"
    assert budget.in_flight == 0


def test_038_retry_config_can_lift_the_connection_bound_and_the_stuck_detection() -> None:
    """max_connections=None: every sample runs at once; enable_stuck_detection=False: no
    watchdog, so a sample without progress for longer than progress_timeout is not failed."""
    fake, timers = FakeTime(), ManualTimers()
    config = RetryConfig(max_connections=None, enable_stuck_detection=False, progress_timeout=5)
    retry = handler(config, fake, timers)
    pending: list[APIFuture[Any]] = [APIFuture() for _ in range(2000)]
    outs = [retry.run(lambda f=f: f) for f in pending]
    assert retry.in_flight == 2000
    assert timers.scheduled == []  # no watchdog armed
    fake.now = 60.0
    assert not any(out.done() for out in outs)
    pending[0].set_result(7)
    assert outs[0].result(timeout=1) == 7


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [("max_connections", 0, ValueError), ("enable_stuck_detection", "no", TypeError)],
)
def test_bad_038_retry_config_values_are_refused(
    field: str, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match=field):
        RetryConfig(**{field: value})
