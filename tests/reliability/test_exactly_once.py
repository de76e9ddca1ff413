"""Exactly-once under injected faults: training and sampling give the fault-free results."""

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
# About one request in ten fails: 5xx, dropped before or after handling, 429 on asample,
# 408 on polls; every request also waits 2 ms.
RULE = FaultRule(
    error_5xx=0.04,
    rate_limit_429=0.10,
    timeout_408=0.10,
    drop=0.03,
    drop_response=0.03,
    latency=0.002,
)


class CountingFaults(Faults):
    """Faults that also count every request they decided on."""

    decided = 0

    def decide(
        self, family: str, endpoint: str, from_038_client: Callable[[], bool] = lambda: False
    ) -> FaultDecision:
        self.decided += 1
        return super().decide(family, endpoint, from_038_client)


def faults() -> CountingFaults:
    return CountingFaults({"*": RULE}, seed=11)


def _training_run(server: Any, client: Any) -> tuple[list[float], dict[str, Any]]:
    trainer = client.create_lora_training_client(base_model=MODEL, rank=4, seed=5)
    losses = train(trainer, 0, STEPS)
    path = trainer.save_state("final").result(timeout=60).path
    return losses, checkpoint_tensors(server, path)


@pytest.mark.usefixtures("fast_backoff")
def test_pipelined_training_under_faults_is_bit_identical(
    make_server: Callable[..., Any], make_client: Callable[..., Any]
) -> None:
    clean = make_server()
    clean_losses, clean_tensors = _training_run(clean, make_client(clean.url))

    injector = faults()
    faulty = make_server(faults=injector)
    started = time.monotonic()
    losses, tensors = _training_run(faulty, make_client(faulty.url))
    elapsed = time.monotonic() - started

    injected = sum(injector.injected.values())
    assert injected >= 10, injector.injected  # the run really met faults
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
    clean = make_server()
    expected = sample_tokens(fast_sampler(make_client(clean.url), base_model=MODEL), SAMPLES)

    injector = faults()
    faulty = make_server(faults=injector)
    sampler = fast_sampler(make_client(faulty.url), base_model=MODEL)
    started = time.monotonic()
    got = sample_tokens(sampler, SAMPLES)
    elapsed = time.monotonic() - started

    injected = sum(injector.injected.values())
    assert injected >= 20, injector.injected
    assert got == expected
    print(
        f"sampling: {SAMPLES} samples, {injected}/{injector.decided} requests faulted "
        f"{dict(injector.injected)}, {elapsed:.1f} s"
    )
