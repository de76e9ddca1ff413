"""Retry policies and the executor: backoff schedules, Retry-After, retryability, the transport
and deadline layers (over loopback HTTP), and the three ways the executor runs attempts."""

from __future__ import annotations

import email.utils
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from core_helpers import PATH, Made
from support.fake_service import FakeService, FakeTime, Reply

from tinker._futures import APIFuture, completed, failed
from tinker._retry import (
    NO_RETRY,
    SAMPLE_SUBMIT,
    SUBMIT,
    SUBMIT_BACKOFF,
    TRANSPORT,
    TRANSPORT_BACKOFF,
    RetryConfig,
    RetryEnv,
    RetryExecutor,
    RetryPolicy,
    SampleAttempts,
    is_retryable_status,
    retry_after_seconds,
    should_retry_response,
)
from tinker._workers import ClientClosedError, WorkerPool
from tinker.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    RequestErrorCategory,
    RequestFailedError,
    status_error,
)
from tinker.lib.retryable_exception import RetryableException

T = TypeVar("T")


def test_transport_backoff_nominal_sequence_and_downward_jitter() -> None:
    nominal = [TRANSPORT_BACKOFF.delay(n, lambda: 0.0) for n in range(7)]
    assert nominal == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    # U close to 1 takes off almost 25 %, never more.
    assert TRANSPORT_BACKOFF.delay(0, lambda: 0.999999) == pytest.approx(0.375, abs=1e-6)
    assert TRANSPORT_BACKOFF.delay(5, lambda: 0.5) == pytest.approx(8.75)


def test_submit_backoff_is_powers_of_two_capped_at_30_without_jitter() -> None:
    assert [SUBMIT_BACKOFF.delay(a, lambda: 0.9) for a in range(8)] == [
        1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0,
    ]  # fmt: skip


def test_sample_backoff_is_symmetric_and_clamped() -> None:
    backoff = RetryConfig().backoff()
    assert backoff.delay(0, lambda: 0.5) == 0.5
    assert backoff.delay(0, lambda: 0.0) == pytest.approx(0.375)
    assert backoff.delay(0, lambda: 1.0) == pytest.approx(0.625)
    assert backoff.delay(5, lambda: 1.0) == 10.0  # 10 * 1.25 clamped to the maximum
    assert backoff.delay(1000, lambda: 0.5) == 10.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "60"}, 60.0),
        ({"retry-after": "61"}, None),
        ({"retry-after": "0"}, None),
        ({"retry-after": "-2"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after-ms": "junk", "retry-after": "2"}, 2.0),
        ({}, None),
    ],
)
def test_retry_after_values(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_seconds(headers, now=1_000_000.0) == expected


def test_retry_after_http_date_is_relative_to_now() -> None:
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 7, usegmt=True)
    assert retry_after_seconds({"retry-after": date}, now=now) == pytest.approx(7.0)
    late = email.utils.formatdate(now + 600, usegmt=True)
    assert retry_after_seconds({"retry-after": late}, now=now) is None


@pytest.mark.parametrize(
    ("status", "retry"),
    [(400, False), (401, False), (404, False), (408, True), (409, True), (410, False),
     (422, False), (429, True), (500, True), (502, True), (503, True), (599, True)],
)  # fmt: skip
def test_retryable_statuses(status: int, retry: bool) -> None:
    assert is_retryable_status(status) is retry
    assert should_retry_response(status, {}) is retry


def test_x_should_retry_overrides_the_status() -> None:
    assert should_retry_response(400, {"x-should-retry": "true"}) is True
    assert should_retry_response(503, {"x-should-retry": "false"}) is False
    assert should_retry_response(503, {"x-should-retry": "maybe"}) is True


def test_policy_values() -> None:
    assert TRANSPORT.max_retries is None and not TRANSPORT.deadline_layer
    assert NO_RETRY.max_retries == 0 and not NO_RETRY.deadline_layer
    assert SUBMIT.deadline_layer and SUBMIT.is_retryable(status_error(429, None))
    assert SAMPLE_SUBMIT.max_retries == 0 and SAMPLE_SUBMIT.deadline_layer
    assert not SAMPLE_SUBMIT.is_retryable(status_error(429, None))
    assert SAMPLE_SUBMIT.is_retryable(status_error(503, None))
    assert SUBMIT.is_retryable(APITimeoutError())
    assert not SUBMIT.is_retryable(status_error(400, None))
    assert not SUBMIT.is_retryable(ValueError("x"))


MakeTransport = Callable[..., Made]
# The deadline layer alone: no transport retries, 5 minutes.
DEADLINE_ONLY = RetryPolicy(max_retries=0, deadline_layer=True, deadline=300.0)


def submit_layer(attempt: Callable[[], T], fake: FakeTime) -> T:
    attempts = DEADLINE_ONLY.attempts(RetryEnv(clock=fake.clock), "POST /x")
    return RetryExecutor(sleep=fake.sleep).call(attempts, lambda _: attempt())


def test_deadline_layer_retries_until_success() -> None:
    fake = FakeTime()
    outcomes: list[BaseException | str] = [APIConnectionError(), status_error(503, None), "ok"]

    def attempt() -> str:
        fake.now += 0.1
        item = outcomes.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    result = submit_layer(attempt, fake)
    assert result == "ok"
    assert fake.sleeps == [1.0, 2.0]


def test_deadline_layer_trims_the_last_pause_and_raises_the_last_error() -> None:
    fake = FakeTime()
    calls = []

    def attempt() -> None:
        calls.append(fake.now)
        raise status_error(500, {"detail": f"boom {len(calls)}"})

    with pytest.raises(Exception, match="boom") as info:
        submit_layer(attempt, fake)
    # 1+2+4+8+16 = 31, then 30 s steps up to 301 -> the last pause is trimmed to end at 300.
    assert fake.sleeps[:6] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert sum(fake.sleeps) == pytest.approx(300.0)
    assert max(calls) == pytest.approx(300.0)
    assert str(len(calls)) in str(info.value)


def test_deadline_layer_does_not_retry_other_errors() -> None:
    fake = FakeTime()

    def attempt() -> None:
        raise BadRequestError("Error code: 400", status_code=400)

    with pytest.raises(BadRequestError):
        submit_layer(attempt, fake)
    assert fake.sleeps == []


def test_deadline_layer_waits_out_a_billing_pause_every_5_s_with_one_notice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeTime()
    outcomes: list[BaseException | str] = [status_error(402, {"detail": "billing"})] * 3 + ["ok"]

    def attempt() -> str:
        item = outcomes.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    with caplog.at_level("WARNING", logger="tinker._retry"):
        assert submit_layer(attempt, fake) == "ok"
    assert fake.sleeps == [5.0, 5.0, 5.0]
    notices = [r.getMessage() for r in caplog.records if "HTTP 402" in r.getMessage()]
    assert len(notices) == 1 and "trying again every 5s" in notices[0]


def test_deadline_layer_gives_up_a_billing_pause_at_its_deadline() -> None:
    fake = FakeTime()

    def attempt() -> None:
        raise status_error(402, {"detail": "billing"})

    with pytest.raises(Exception, match="402"):
        submit_layer(attempt, fake)
    assert sum(fake.sleeps) == pytest.approx(300.0)


def test_retry_config_defaults_and_validation() -> None:
    config = RetryConfig()
    assert config.max_connections == 1000
    assert config.progress_timeout == 1800.0
    assert (config.retry_delay_base, config.retry_delay_max) == (0.5, 10.0)
    assert config.jitter_factor == 0.25 and config.enable_retry_logic
    assert hash(config) == hash(RetryConfig())
    with pytest.raises(ValueError, match="max_connections"):
        RetryConfig(max_connections=0)


def test_retry_config_classifies_errors() -> None:
    config = RetryConfig()
    assert config.is_retryable(RetryableException("Promise expired"))
    assert config.is_retryable(APIConnectionError())
    assert config.is_retryable(TimeoutError())
    assert config.is_retryable(status_error(409, None))
    assert not config.is_retryable(status_error(404, None))
    assert not config.is_retryable(ValueError("Error retrieving result"))
    failed = RequestFailedError("x", request_id="r", category=RequestErrorCategory.Server)
    assert not config.is_retryable(failed)
    assert not RetryConfig(enable_retry_logic=False).is_retryable(APIConnectionError())


def test_stuck_error_message() -> None:
    error = RetryConfig().stuck_error()
    assert isinstance(error, APIConnectionError)
    assert str(error) == "No progress made in 1800.0s. Requests appear to be stuck."


# -- the transport layer over loopback HTTP ---------------------------------------------


RETRIED = [
    (408, APIStatusError),
    (409, ConflictError),
    (429, RateLimitError),
    (500, InternalServerError),
    (503, InternalServerError),
]


@pytest.mark.parametrize(("status", "error"), RETRIED)
def test_retryable_status_is_retried_max_retries_times_with_backoff(
    service: FakeService, make_transport: MakeTransport, status: int, error: type[APIStatusError]
) -> None:
    service.push(PATH, *[Reply(status, {"detail": "nope"})] * 5)
    made = make_transport(service.url, max_retries=4)
    with pytest.raises(error) as info:
        made.post()
    assert type(info.value) is error
    assert info.value.status_code == status
    assert info.value.body == {"detail": "nope"}
    assert str(info.value) == f"Error code: {status} - {{'detail': 'nope'}}"
    requests_seen = service.seen(PATH)
    assert len(requests_seen) == 5
    assert made.sleeps == [0.5, 1.0, 2.0, 4.0]
    assert len({r.headers["X-Idempotency-Key"] for r in requests_seen}) == 1
    counts = [r.headers["x-stainless-retry-count"] for r in requests_seen]
    assert counts == ["0", "1", "2", "3", "4"]


def test_default_max_retries_is_ten_with_capped_backoff(
    service: FakeService, make_transport: MakeTransport
) -> None:
    service.push(PATH, *[Reply(500)] * 11)
    made = make_transport(service.url)
    with pytest.raises(InternalServerError, match=r"^Error code: 500$"):
        made.post()
    assert len(service.seen(PATH)) == 11
    assert made.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 10.0, 10.0]


def test_retry_after_is_used_exactly_then_success(
    service: FakeService, make_transport: MakeTransport
) -> None:
    service.push(
        PATH,
        Reply(503, headers={"retry-after-ms": "250"}),
        Reply(429, headers={"retry-after": "2"}),
        Reply(429, headers={"retry-after": "120"}),  # out of range: backoff instead
    )
    made = make_transport(service.url)
    assert "request_id" in made.post().body
    assert made.sleeps == [0.25, 2.0, 2.0]
    assert len({r.headers["X-Idempotency-Key"] for r in service.seen(PATH)}) == 1


def test_each_logical_call_gets_a_new_idempotency_key(
    service: FakeService, make_transport: MakeTransport
) -> None:
    made = make_transport(service.url)
    made.post()
    made.post()
    first, second = (r.headers["X-Idempotency-Key"] for r in service.seen(PATH))
    assert first != second


def test_x_should_retry_header_overrides_status(
    service: FakeService, make_transport: MakeTransport
) -> None:
    made = make_transport(service.url)
    service.push(PATH, Reply(503, headers={"x-should-retry": "false"}))
    with pytest.raises(InternalServerError):
        made.post()
    assert len(service.seen(PATH)) == 1 and made.sleeps == []
    service.push(PATH, Reply(400, headers={"x-should-retry": "true"}))
    assert "request_id" in made.post().body
    assert len(service.seen(PATH)) == 3


@pytest.mark.parametrize(
    ("status", "error"), [(400, BadRequestError), (404, NotFoundError), (410, APIStatusError)]
)
def test_other_client_errors_raise_at_once_with_the_body(
    service: FakeService, make_transport: MakeTransport, status: int, error: type[APIStatusError]
) -> None:
    service.push(PATH, Reply(status, raw=b"plain text failure"))
    made = make_transport(service.url)
    with pytest.raises(error) as info:
        made.post()
    assert type(info.value) is error
    assert info.value.body == "plain text failure"
    assert made.sleeps == [] and len(service.seen(PATH)) == 1


def test_connection_reset_becomes_api_connection_error_after_retries(
    service: FakeService, make_transport: MakeTransport
) -> None:
    service.push(PATH, *[Reply(200, drop=True)] * 4)
    made = make_transport(service.url, max_retries=3)
    with pytest.raises(APIConnectionError) as info:
        made.post()
    assert type(info.value) is APIConnectionError
    assert str(info.value) == (
        f"The connection to {service.url}{PATH} failed: "
        "RemoteDisconnected: Remote end closed connection without response"
    )
    assert info.value.__cause__ is not None
    assert len(service.seen(PATH)) == 4 and made.sleeps == [0.5, 1.0, 2.0]
    assert len({r.headers["X-Idempotency-Key"] for r in service.seen(PATH)}) == 1


def test_read_timeout_becomes_api_timeout_error_after_retries(
    service: FakeService, make_transport: MakeTransport
) -> None:
    service.push(PATH, *[Reply(200, {"late": True}, delay=0.5)] * 3)
    made = make_transport(service.url, max_retries=2)
    with pytest.raises(APITimeoutError) as info:
        made.post(timeout=0.1)
    assert str(info.value) == f"No answer from {service.url}{PATH} within 0.1 s"
    # The client gave up before the service answered: wait for it to record the last one.
    assert len(service.wait_seen(PATH, 3)) == 3 and made.sleeps == [0.5, 1.0]


def test_connection_error_then_success(service: FakeService, make_transport: MakeTransport) -> None:
    service.push(PATH, Reply(200, drop=True))
    made = make_transport(service.url)
    assert "request_id" in made.post().body
    assert made.sleeps == [0.5]


def test_refused_connection_fails_at_once_naming_the_url(make_transport: MakeTransport) -> None:
    """Nothing listens there: no transport retries (they took 60 s), a connection error (not
    a timeout) that names the URL and what to check."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    made = make_transport(f"http://127.0.0.1:{port}", max_retries=3)
    with pytest.raises(APIConnectionError) as info:
        made.post()
    assert type(info.value) is APIConnectionError
    assert str(info.value) == (
        f"Cannot connect to http://127.0.0.1:{port}{PATH}: connection refused "
        "(is the server running, and is base_url right?)"
    )
    assert made.sleeps == []


def test_max_retries_zero_sends_once(service: FakeService, make_transport: MakeTransport) -> None:
    service.push(PATH, Reply(503))
    made = make_transport(service.url)
    with pytest.raises(InternalServerError):
        made.post(max_retries=0)
    assert len(service.seen(PATH)) == 1 and made.sleeps == []


# -- the executor --------------------------------------------------------------------------------


class Pausing:
    """Attempts that pause `pause` s after each failure, `times` times, then give up."""

    def __init__(self, pause: float, times: int) -> None:
        self.pause = pause
        self.left = times
        self.errors: list[Exception] = []

    def pause_after(self, error: Exception) -> float | None:
        self.errors.append(error)
        if self.left == 0:
            return None
        self.left -= 1
        return self.pause


def test_submit_pauses_in_the_queue_so_the_worker_serves_other_calls() -> None:
    pool = WorkerPool(1, name="test-submit")
    executor = RetryExecutor()
    order: list[str] = []
    tries = [0]

    def flaky(_: Pausing) -> str:
        tries[0] += 1
        order.append(f"flaky {tries[0]}")
        if tries[0] == 1:
            raise APIConnectionError()
        return "flaky done"

    slow = executor.submit(Pausing(0.3, 1), flaky, pool=pool)
    quick = executor.submit(Pausing(0.0, 0), lambda _: order.append("quick") or "quick", pool=pool)
    assert quick.result(timeout=5) == "quick"
    assert slow.result(timeout=5) == "flaky done"
    # The one worker ran the other call while the first one paused.
    assert order == ["flaky 1", "quick", "flaky 2"]
    assert pool.worker_count <= 1
    pool.close()


def test_submit_gives_up_with_the_last_error_and_stops_when_cancelled_or_closed() -> None:
    pool = WorkerPool(2, name="test-submit")
    executor = RetryExecutor()
    attempts = Pausing(0.0, 2)
    failing = executor.submit(
        attempts, lambda _: (_ for _ in ()).throw(ValueError("no")), pool=pool
    )
    assert isinstance(failing.exception(timeout=5), ValueError)
    assert len(attempts.errors) == 3  # two retries, then the policy gave up
    calls = [0]

    def count(_: Pausing) -> None:
        calls[0] += 1
        raise APIConnectionError()

    waiting = executor.submit(Pausing(30.0, 5), count, pool=pool)
    cancelled = executor.submit(Pausing(30.0, 5), count, pool=pool)
    for _ in range(100):
        if calls[0] == 2:
            break
        threading.Event().wait(0.01)
    assert cancelled.cancel()
    pool.close()  # the pause of `waiting` is dropped: its future fails at once
    assert isinstance(waiting.exception(timeout=1), ClientClosedError)
    late = executor.submit(Pausing(0.0, 0), lambda _: "never", pool=pool)
    assert isinstance(late.exception(timeout=1), ClientClosedError)
    assert calls[0] == 2


def test_chain_starts_future_attempts_and_pauses_on_the_timers() -> None:
    fake = FakeTime()
    executor = RetryExecutor(timers=fake)
    outcomes: list[APIFuture[Any]] = [
        failed(APIConnectionError()),
        failed(RateLimitError("429", status_code=429)),
        completed("tokens"),
    ]
    started: list[float] = []

    def start(_: Pausing) -> APIFuture[Any]:
        started.append(fake.now)
        return outcomes.pop(0)

    out: APIFuture[str] = APIFuture()
    assert executor.chain(Pausing(2.0, 5), start, into=out) is out
    assert out.result(0) == "tokens"
    assert started == [0.0, 2.0, 4.0] and fake.sleeps == [2.0, 2.0]


def test_sample_attempts_back_off_everyone_on_429_and_jitter_other_retries() -> None:
    backed_off: list[int] = []
    config = RetryConfig(jitter_factor=0.0)
    attempts = SampleAttempts(config, name="s", on_rate_limited=lambda: backed_off.append(1))
    assert attempts.pause_after(RateLimitError("429", status_code=429)) == 0.0
    assert attempts.pause_after(RateLimitError("429", status_code=429)) == 0.0
    assert backed_off == [1, 1]
    # a 429 does not count as a try: the backoff of other failures starts at 0.5 s
    assert attempts.pause_after(APIConnectionError()) == 0.5
    assert attempts.pause_after(status_error(503, None)) == 1.0
    assert attempts.pause_after(status_error(400, None)) is None
    off = SampleAttempts(
        RetryConfig(enable_retry_logic=False), name="s", on_rate_limited=lambda: None
    )
    assert off.pause_after(RateLimitError("429", status_code=429)) == 0.0
    assert off.pause_after(APIConnectionError()) is None


def test_a_call_behind_a_long_silence_gives_up_at_its_first_unanswered_attempt() -> None:
    """The deadline counts from when the server stopped answering any request, so calls queued
    behind one that gave up do not each wait a deadline of their own."""
    now = [1000.0]
    silent_since: list[float | None] = [None]
    env = RetryEnv(
        clock=lambda: now[0], max_retries=0, deadline=300.0, silent_since=lambda: silent_since[0]
    )
    unanswered = APIConnectionError("Cannot connect to http://h/api/v1/x: connection refused")
    assert SUBMIT.attempts(env, "POST /x").pause_after(unanswered) is not None  # no silence yet
    silent_since[0] = now[0] - 299.0
    assert SUBMIT.attempts(env, "POST /x").pause_after(unanswered) == pytest.approx(1.0)
    silent_since[0] = now[0] - 300.0
    assert SUBMIT.attempts(env, "POST /x").pause_after(unanswered) is None
    # an answer, even an error status, is not silence: it keeps the call's own deadline
    assert SUBMIT.attempts(env, "POST /x").pause_after(status_error(503, None)) is not None


def test_the_transport_tracks_since_when_nothing_was_answered() -> None:
    from tinker._transport import Silence

    now = [5.0]
    silence = Silence(lambda: now[0])
    assert silence.since() is None
    silence.unanswered()
    now[0] = 9.0
    silence.unanswered()
    assert silence.since() == 5.0  # the first unanswered request since the last answer
    silence.answered()
    assert silence.since() is None
