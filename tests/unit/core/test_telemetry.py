"""Telemetry: event fields, batching, overflow, bounded retries, drain on close, scrubbing."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
from core_helpers import RuntimeFactory
from support.fake_service import FakeService, FakeTime, Reply

from tinker._calls import ApiCall
from tinker._retry import SUBMIT
from tinker._runtime import RuntimeOptions
from tinker._session import open_session
from tinker._telemetry import MAX_QUEUE_SIZE, Telemetry, is_user_error, send_batch
from tinker._transport import Traffic
from tinker.config import ClientConfig
from tinker.errors import (
    APIConnectionError,
    APIStatusError,
    RequestErrorCategory,
    RequestFailedError,
    status_error,
)


class Collector:
    """A telemetry sender that records batches and can fail on demand."""

    def __init__(self, failures: int = 0) -> None:
        self.batches: list[dict[str, Any]] = []
        self.calls = 0
        self.failures = failures
        self.finals: list[bool] = []

    def __call__(self, body: dict[str, Any], timeout: float, final: bool) -> None:
        self.calls += 1
        self.finals.append(final)
        if self.failures:
            self.failures -= 1
            raise APIConnectionError()
        self.batches.append(body)


def make_telemetry(sender: Collector, **kwargs: Any) -> Telemetry:
    return Telemetry(
        sender,
        session_id="S",
        sdk_version="0.5.1",
        secrets=("sk-secret-key",),
        wall_clock=lambda: 1_764_051_314.0821,
        **kwargs,
    )


def test_events_have_the_protocol_fields_and_batches_hold_at_most_100() -> None:
    sender = Collector()
    telemetry = make_telemetry(sender)
    telemetry.session_start()
    for index in range(249):
        telemetry.generic_event("thing", {"i": index}, "DEBUG")
    telemetry.flush_pending(deadline=None)
    assert [len(b["events"]) for b in sender.batches] == [100, 100, 50]
    first = sender.batches[0]
    assert first["platform"] and first["sdk_version"] == "0.5.1" and first["session_id"] == "S"
    start = first["events"][0]
    assert start["event"] == "SESSION_START" and start["severity"] == "INFO"
    assert start["timestamp"] == "2025-11-25T06:15:14.082100Z"
    assert re.fullmatch(r"[0-9a-f-]{36}", start["event_id"])
    indexes = [e["event_session_index"] for b in sender.batches for e in b["events"]]
    assert indexes == list(range(250))
    generic = first["events"][1]
    assert generic["event_name"] == "thing" and generic["event_data"] == {"i": 0}


def test_flusher_waits_the_interval_and_wakes_early_at_100_events() -> None:
    sender = Collector()
    waits: list[float] = []
    woke = threading.Event()
    telemetry = make_telemetry(sender)

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        woke.set()
        return telemetry._wake.wait(5)

    telemetry._wait = wait
    telemetry.start()
    assert woke.wait(5)
    for index in range(99):
        telemetry.generic_event("e", {"i": index})
    assert not telemetry._wake.is_set()
    telemetry.generic_event("e", {"i": 99})  # the 100th event triggers a flush
    assert telemetry.flush(timeout=5)
    assert [len(b["events"]) for b in sender.batches] == [100]
    assert waits[0] == 10.0
    telemetry.close()


def test_queue_overflow_drops_events_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    telemetry = make_telemetry(Collector())
    for _ in range(MAX_QUEUE_SIZE + 5):
        telemetry.generic_event("e")
    assert telemetry.queued == MAX_QUEUE_SIZE
    assert "Telemetry queue full" in caplog.text


def test_failed_batches_are_retried_a_bounded_number_of_times_then_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sender = Collector(failures=10)
    telemetry = make_telemetry(sender)
    telemetry._stop.wait = lambda timeout=None: False  # type: ignore[method-assign]
    telemetry.generic_event("e")
    telemetry.flush_pending(deadline=None)
    assert sender.calls == 3 and sender.batches == []
    assert "dropped 1 telemetry events" in caplog.text
    sender.failures = 1
    telemetry.generic_event("e2")
    telemetry.flush_pending(deadline=None)
    assert sender.calls == 5
    assert [e["event_name"] for e in sender.batches[0]["events"]] == ["e2"]


def test_close_drains_the_queue_with_final_sends() -> None:
    sender = Collector()
    telemetry = make_telemetry(sender)
    telemetry.start()
    for _ in range(30):
        telemetry.generic_event("late")
    telemetry.close()
    assert sum(len(b["events"]) for b in sender.batches) == 30
    assert sender.finals[-1] is True


def test_secrets_are_scrubbed_from_payloads() -> None:
    sender = Collector()
    telemetry = make_telemetry(sender)
    telemetry.exception(RuntimeError("key sk-secret-key leaked"))
    telemetry.flush_pending(deadline=None)
    text = str(sender.batches)
    assert "sk-secret-key" not in text and "***" in text


def test_exceptions_are_classified_and_fatal_adds_session_end() -> None:
    sender = Collector()
    telemetry = make_telemetry(sender)
    telemetry.exception(status_error(404, {"detail": "no"}))
    telemetry.exception(ValueError("bug"), fatal=True)
    telemetry.flush_pending(deadline=None)
    user, unhandled, end = sender.batches[0]["events"]
    assert user["event"] == "GENERIC_EVENT" and user["event_name"] == "user_error"
    assert user["severity"] == "WARNING"
    assert user["event_data"]["status_code"] == 404
    assert unhandled["event"] == "UNHANDLED_EXCEPTION" and unhandled["severity"] == "ERROR"
    assert unhandled["error_type"] == "ValueError" and unhandled["error_message"] == "bug"
    assert "Traceback" in unhandled["traceback"] or unhandled["traceback"].startswith("ValueError")
    assert end["event"] == "SESSION_END" and re.fullmatch(r"\d+:\d\d:\d\d(\.\d+)?", end["duration"])


def test_user_error_rules() -> None:
    user = RequestFailedError("x", request_id="r", category=RequestErrorCategory.User)
    server = RequestFailedError("x", request_id="r", category=RequestErrorCategory.Server)
    assert is_user_error(user) and not is_user_error(server)
    for status, expected in ((400, True), (408, False), (409, True), (429, True), (500, False)):
        assert is_user_error(status_error(status, None)) is expected
    try:
        try:
            raise status_error(422, None)
        except Exception as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert is_user_error(outer)


def test_runtime_sends_session_start_and_checks_acceptance(
    service: FakeService, make_runtime: RuntimeFactory
) -> None:
    runtime = make_runtime(telemetry=True)
    assert runtime.telemetry is not None
    assert runtime.telemetry.flush(timeout=5)
    (sent,) = service.seen("/api/v1/telemetry")
    assert [e["event"] for e in sent.body["events"]] == ["SESSION_START"]
    assert sent.headers["x-stainless-read-timeout"] == "5"
    assert "sk-test-key" not in str(sent.body)
    service.push("/api/v1/telemetry", Reply(200, {"status": "rejected"}))
    with pytest.raises(Exception, match="not accepted"):
        send_batch(runtime.call, {"events": []}, 5.0, True)


def test_submit_layer_failures_are_reported_to_telemetry(service: FakeService) -> None:
    fake = FakeTime()
    config = ClientConfig(api_key="k", base_url=service.url, telemetry=True, max_retries=0)
    options = RuntimeOptions(heartbeat=False, clock=fake.clock, sleep=fake.sleep)
    optim_step = ApiCall(
        traffic=Traffic.TRAIN, method="POST", path="/api/v1/optim_step", body={}, retry=SUBMIT
    )
    with open_session(config, options=options) as runtime:
        service.push("/api/v1/optim_step", Reply(503))
        runtime.call(optim_step)
        service.push("/api/v1/optim_step", Reply(400, {"detail": "bad"}))
        with pytest.raises(APIStatusError):
            runtime.call(optim_step)
        assert runtime.telemetry is not None and runtime.telemetry.flush(timeout=5)
    events = [e for r in service.seen("/api/v1/telemetry") for e in r.body["events"]]
    failures = [
        e
        for e in events
        if e.get("event_name") == "InternalClientHolder.execute_with_retries.exception"
    ]
    retried, fatal = failures
    assert retried["severity"] == "WARNING" and retried["event_data"]["should_retry"] is True
    assert retried["event_data"]["status_code"] == 503
    assert retried["event_data"]["attempt_count"] == 1
    assert fatal["event_data"]["should_retry"] is False
    assert fatal["event_data"]["is_user_error"] is True and fatal["severity"] == "WARNING"
