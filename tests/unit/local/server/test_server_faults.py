"""Fault injection: parsing, per-family rules, telemetry exemption, seeded reproducibility."""

from __future__ import annotations

import pytest

from tinker.local.server.faults import NO_FAULT, FaultRule, Faults


def test_parse_builds_rules_and_seed() -> None:
    faults = Faults.parse("train.5xx=1,sample.429=1,poll.408=1,*.latency=0.25,*.402=1,seed=3")
    assert faults.decide("train", "forward").status == 503
    assert faults.decide("sample", "asample").status == 429
    assert faults.decide("poll", "retrieve_future").status == 408
    rest = faults.decide("rest", "list_training_runs")
    assert rest.status is None and rest.delay == 0.25
    assert faults.decide("rest", "list_training_runs", lambda: True).status == 402
    assert faults.injected["train.503"] == 1


def test_429_everywhere_except_polls_of_old_clients_and_408_only_on_polls() -> None:
    faults = Faults({"*": FaultRule(rate_limit_429=1.0)})
    assert faults.decide("train", "forward").status == 429
    assert faults.decide("sample", "asample").status == 429
    assert faults.decide("rest", "list_training_runs").status == 429
    assert faults.decide("poll", "retrieve_future").status is None  # fatal to 0.5.1 clients
    assert faults.decide("poll", "retrieve_future", lambda: True).status == 429
    pending = Faults({"*": FaultRule(timeout_408=1.0)})
    assert pending.decide("train", "forward").status is None
    assert pending.decide("poll", "retrieve_future").status == 408


def test_rate_limit_all_polls_sends_429_to_the_polls_of_every_client() -> None:
    faults = Faults({"*": FaultRule(rate_limit_429=1.0)}, rate_limit_all_polls=True)
    assert faults.decide("poll", "retrieve_future").status == 429
    parsed = Faults.parse("poll.429=1,rate_limit_all_polls=1")
    assert parsed.decide("poll", "retrieve_future").status == 429
    assert Faults.parse("poll.429=1").decide("poll", "retrieve_future").status is None


def test_a_stall_holds_an_answered_request_for_stall_seconds() -> None:
    faults = Faults.parse("train.stall=1,train.stall_seconds=1.5,train.latency=0.25")
    decision = faults.decide("train", "forward")
    assert decision.stalled and decision.delay == 1.75
    assert decision.status is None and not decision.drop_before and not decision.drop_after
    assert faults.injected["train.stall"] == 1
    assert FaultRule(stall=1.0).stall_seconds == 5.0
    # a request that is answered with an error or dropped is not stalled as well
    both = Faults({"*": FaultRule(stall=1.0, error_5xx=1.0)}).decide("train", "forward")
    assert both.status == 503 and not both.stalled and both.delay == 0.0


def test_a_billing_pause_answers_402_to_new_clients_until_it_ends() -> None:
    now = [100.0]
    faults = Faults({}, clock=lambda: now[0])
    assert faults.decide("train", "optim_step", lambda: True) == NO_FAULT
    faults.pause_billing(30)
    assert faults.decide("train", "optim_step", lambda: True).status == 402
    assert faults.decide("train", "optim_step").status is None  # a 0.5.1 client
    assert faults.decide("session", "create_session", lambda: True).status is None
    now[0] += 30
    assert faults.decide("train", "optim_step", lambda: True) == NO_FAULT
    assert faults.injected == {"train.402": 1}
    parsed = Faults.parse("billing_paused=60")
    assert parsed.decide("poll", "retrieve_future", lambda: True).status == 402
    with pytest.raises(ValueError, match="0 seconds or more"):
        parsed.pause_billing(-1)


def test_402_only_for_new_clients_on_calls_they_pause_on() -> None:
    faults = Faults({"*": FaultRule(payment_402=1.0)})
    assert faults.decide("train", "forward_backward").status is None  # a 0.5.1 client
    assert faults.decide("train", "forward_backward", lambda: True).status == 402
    assert faults.decide("poll", "retrieve_futures", lambda: True).status == 402
    for no_pause in ("create_session", "create_model", "session_heartbeat", "auth_token"):
        assert faults.decide("session", no_pause, lambda: True).status is None, no_pause


def test_wildcard_never_faults_telemetry_unless_named() -> None:
    assert Faults({"*": FaultRule(error_5xx=1.0)}).decide("telemetry", "telemetry").status is None
    named = Faults({"telemetry": FaultRule(error_5xx=1.0)})
    assert named.decide("telemetry", "telemetry").status == 503


def test_same_seed_same_decisions() -> None:
    def draws(seed: int) -> list[object]:
        faults = Faults({"*": FaultRule(error_5xx=0.5, drop=0.3)}, seed=seed)
        return [faults.decide("train", "forward") for _ in range(50)]

    assert draws(1) == draws(1)
    assert draws(1) != draws(2)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("train5xx=1", "<family>.<kind>"),
        ("train.5xx", "family.kind=value"),
        ("train.teapot=1", "kind in"),
        ("moon.5xx=1", "unknown fault families"),
        ("train.5xx=2", "within"),
    ],
)
def test_bad_specs_are_rejected(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Faults.parse(spec)
