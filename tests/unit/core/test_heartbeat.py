"""Heartbeat: the 10 s interval, warnings after 120 s without success, one attempt per beat."""

from __future__ import annotations

import logging
import threading

import pytest
from core_helpers import RuntimeFactory
from support.fake_service import FakeService, Reply

from tinker._heartbeat import Heartbeat, heartbeat_call
from tinker._runtime import RuntimeOptions
from tinker.errors import APIConnectionError


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
    beat = heartbeat_call(runtime.session_id, runtime.config.heartbeat_timeout)
    service.push("/api/v1/session_heartbeat", Reply(503))
    with pytest.raises(Exception, match="503"):
        runtime.call(beat)
    runtime.call(beat)
    first, second = service.seen("/api/v1/session_heartbeat")
    assert first.body == {"session_id": "sess-1"}
    assert first.headers["x-stainless-read-timeout"] == "10"
    assert second.headers["x-stainless-retry-count"] == "0"  # a new call, not a retry
