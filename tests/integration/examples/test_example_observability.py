"""examples/observability.py: every injected fault shows up as a logged retry; results unchanged."""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import ModuleType

import pytest


def test_each_injected_fault_is_retried_and_logged(
    example: Callable[[str], ModuleType],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TINKER_TELEMETRY", "0")
    observability = example("observability")
    faulty = observability.main(steps=4, samples=16)
    clean = observability.main(steps=4, samples=16, faults="seed=0")
    out = capsys.readouterr().out

    injected, retries = faulty["injected"], faulty["retries"]
    assert sum(injected.values()) > 0 and clean["injected"] == {}
    # One transport retry per injected 503 on a training request, one poll per 408 / 503.
    assert retries.get("http retry", 0) == injected.get("train.503", 0)
    assert retries.get("poll 408 (queue state)", 0) == injected.get("poll.408", 0)
    polls_5xx = retries.get("poll 5xx", 0) + retries.get("batch poll 5xx", 0)
    assert polls_5xx == injected.get("poll.503", 0)
    assert (retries.get("sample 429 back-off", 0) > 0) == (injected.get("sample.429", 0) > 0)
    # The 408s the trainer's own requests got reported their queue state: always active here.
    assert set(faulty["queue_states"]) <= {"ACTIVE"}
    assert sum(faulty["queue_states"].values()) <= injected.get("poll.408", 0)
    # Retries are invisible in the results: same losses as without faults, all samples back.
    assert faulty["losses"] == clean["losses"]
    assert faulty["sampled"] == clean["sampled"] == 16
    assert "faults injected by the server" in out
    # The example removed its log handlers again.
    assert not any(type(h).__name__ == "RetryCounter" for h in logging.getLogger("tinker").handlers)
