"""Retry policies: backoff schedules, Retry-After parsing, retryability, the deadline layer."""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from typing import TypeVar

import pytest
from core_fake_service import FakeTime

from tinker._retry import (
    NO_RETRY,
    SAMPLE_SUBMIT,
    SUBMIT,
    SUBMIT_BACKOFF,
    TRANSPORT,
    TRANSPORT_BACKOFF,
    RetryConfig,
    is_retryable_status,
    retry_after_seconds,
    run_with_deadline,
    should_retry_response,
)
from tinker.errors import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
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


def submit_layer(attempt: Callable[[], T], fake: FakeTime) -> T:
    return run_with_deadline(
        attempt,
        deadline=300.0,
        is_retryable=SUBMIT.is_retryable,
        clock=fake.clock,
        sleep=fake.sleep,
        what="POST /x",
    )


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
