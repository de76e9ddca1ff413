"""Exactly-once under injected faults of every kind (5xx, 408, 429 on any request including
polls, connections dropped before and after handling, stalls longer than the client's
timeout): training and sampling give the fault-free results, bit for bit."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tinker.local.server.faults import FaultDecision, FaultRule, Faults

from .runs import (
    MODEL,
    assert_bit_identical,
    checkpoint_tensors,
    fast_sampler,
    sample_tokens,
    train,
)

STEPS = 100
SAMPLES = 600
# About one request in ten fails: 5xx, 429 (polls included), 408 on polls, dropped before or
# after handling, or stalled past the client's timeout; every request also waits 2 ms.
RULE = FaultRule(
    error_5xx=0.02,
    rate_limit_429=0.025,
    timeout_408=0.03,
    drop=0.015,
    drop_response=0.015,
    stall=0.02,
    stall_seconds=2.0,
    latency=0.002,
)
# The client gives up on a stalled request after 1 s (polls: 1.5 s against a 0.5 s long poll)
# and retries it with the same idempotency key while the server still holds the first try.
CLIENT_TIMEOUTS = {"timeout": 1.0, "poll_timeout": 1.5}
LONG_POLL_SECONDS = 0.5
EVERY_KIND = {"503", "429", "408", "drop", "drop_response", "stall"}


class CountingFaults(Faults):
    """Faults that also count every request they decided on."""

    decided = 0

    def decide(
        self, family: str, endpoint: str, from_038_client: Callable[[], bool] = lambda: False
    ) -> FaultDecision:
        self.decided += 1
        return super().decide(family, endpoint, from_038_client)


def faults() -> CountingFaults:
    return CountingFaults({"*": RULE}, seed=11, rate_limit_all_polls=True)


def kinds_met(injector: Faults) -> set[str]:
    """The fault kinds (status or drop kind, any family) the injector dealt out."""
    return {key.split(".", 1)[1] for key, count in injector.injected.items() if count}


def _training_run(
    server: Any, client: Any, steps: int = STEPS
) -> tuple[list[float], dict[str, Any]]:
    trainer = client.create_lora_training_client(base_model=MODEL, rank=4, seed=5)
    losses = train(trainer, 0, steps)
    path = trainer.save_state("final").result(timeout=60).path
    return losses, checkpoint_tensors(server, path)


@pytest.mark.usefixtures("fast_backoff")
def test_pipelined_training_under_faults_is_bit_identical(
    make_server: Callable[..., Any], make_client: Callable[..., Any]
) -> None:
    clean = make_server(long_poll_seconds=LONG_POLL_SECONDS)
    clean_losses, clean_tensors = _training_run(clean, make_client(clean.url))

    injector = faults()
    faulty = make_server(faults=injector, long_poll_seconds=LONG_POLL_SECONDS)
    started = time.monotonic()
    client = make_client(faulty.url, **CLIENT_TIMEOUTS)
    losses, tensors = _training_run(faulty, client)
    elapsed = time.monotonic() - started

    injected = sum(injector.injected.values())
    assert injected >= STEPS // 5, injector.injected  # the run really met faults
    assert kinds_met(injector) == EVERY_KIND, injector.injected
    assert injector.injected["poll.429"] >= 1, injector.injected  # polls rate-limited too
    assert losses == clean_losses
    assert_bit_identical(tensors, clean_tensors)
    print(
        f"training: {STEPS} steps, {injected}/{injector.decided} requests faulted "
        f"{dict(injector.injected)}, {elapsed:.1f} s"
    )


@pytest.mark.usefixtures("fast_backoff")
def test_concurrent_samples_under_faults_match_the_fault_free_run(
    make_server: Callable[..., Any], make_client: Callable[..., Any]
) -> None:
    clean = make_server(long_poll_seconds=LONG_POLL_SECONDS)
    expected = sample_tokens(fast_sampler(make_client(clean.url), base_model=MODEL), SAMPLES)

    injector = faults()
    faulty = make_server(faults=injector, long_poll_seconds=LONG_POLL_SECONDS)
    sampler = fast_sampler(make_client(faulty.url, **CLIENT_TIMEOUTS), base_model=MODEL)
    started = time.monotonic()
    got = sample_tokens(sampler, SAMPLES)
    elapsed = time.monotonic() - started

    injected = sum(injector.injected.values())
    assert injected >= 20, injector.injected
    assert kinds_met(injector) == EVERY_KIND, injector.injected
    assert got == expected
    print(
        f"sampling: {SAMPLES} samples, {injected}/{injector.decided} requests faulted "
        f"{dict(injector.injected)}, {elapsed:.1f} s"
    )
