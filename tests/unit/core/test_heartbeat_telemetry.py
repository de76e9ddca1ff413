"""Heartbeat and telemetry: intervals, warnings, batching, overflow, drain on close."""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

import pytest
from core_fake_service import FakeService, RuntimeFactory, Scripted

from tinker._runtime import Heartbeat, RuntimeOptions
from tinker._telemetry import MAX_QUEUE_SIZE, Telemetry, is_user_error
from tinker.errors import (
    APIConnectionError,
    RequestErrorCategory,
    RequestFailedError,
    status_error,
)


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_heartbeat_waits_ten_seconds_between_beats_and_stops_at_once() -> None:
    waits: list[float] = []
    beats = threading.Semaphore(0)
    stop_after = 3

    heartbeat: Heartbeat

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        if len(waits) > stop_after:
            heartbeat.stop()
            return True
        return False

    heartbeat = Heartbeat(beats.release, session_id="s", wait=wait)
    heartbeat.start()
    assert heartbeat._thread is not None
    heartbeat._thread.join(5)
    assert not heartbeat._thread.is_alive()
    assert waits == [10.0] * (stop_after + 1)
    assert sum(beats.acquire(timeout=0) for _ in range(10)) == stop_after


def test_heartbeat_warns_on_each_failure_once_120s_pass_without_success(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    outcomes: list[Exception | None] = []

    def beat() -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    heartbeat = Heartbeat(beat, session_id="S-1", clock=clock)
    caplog.set_level(logging.DEBUG, logger="tinker")

    def warnings() -> int:
        return sum(r.levelno == logging.WARNING for r in caplog.records)

    for _ in range(12):  # 120 s of failures: quiet
        clock.now += 10
        outcomes.append(APIConnectionError())
        assert heartbeat.beat_once() is False
    assert warnings() == 0
    for expected in (1, 2):  # every failed beat past 120 s warns
        clock.now += 10
        outcomes.append(APIConnectionError())
        heartbeat.beat_once()
        assert warnings() == expected
    message = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING][-1]
    assert "S-1" in message and "If this persists, the session will be terminated." in message
    clock.now += 10
    outcomes.append(None)
    assert heartbeat.beat_once() is True
    clock.now += 10
    outcomes.append(APIConnectionError())
    heartbeat.beat_once()
    assert warnings() == 2  # success reset the 120 s window


def test_runtime_heartbeat_body_has_no_retries_and_a_10s_timeout(
    service: FakeService, make_runtime: RuntimeFactory
) -> None:
    runtime = make_runtime(options=RuntimeOptions(heartbeat=False))
    service.push("/api/v1/session_heartbeat", Scripted(503))
    with pytest.raises(Exception, match="503"):
        runtime._send_heartbeat()
    runtime._send_heartbeat()
    first, second = service.seen("/api/v1/session_heartbeat")
    assert first.body == {"session_id": "sess-1"}
    assert first.headers["x-stainless-read-timeout"] == "10"
    assert second.headers["x-stainless-retry-count"] == "0"  # a new call, not a retry


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
    service.push("/api/v1/telemetry", Scripted(200, {"status": "rejected"}))
    with pytest.raises(Exception, match="not accepted"):
        runtime._send_telemetry({"events": []}, 5.0, True)
