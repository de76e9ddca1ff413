"""Soak: mixed training and sampling at a bounded rate; threads, fds and RSS must not grow.

The suite runs a 16 s soak; the 30-minute one is opt-in (TINKER_OPTIN=1).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from tinker import types

from .runs import ADAM, MODEL, batch, fast_sampler

MIB = 1024 * 1024
THREAD_SLACK = 4
FD_SLACK = 8
RSS_SLACK = 64 * MIB
ROUND_SECONDS = 0.25  # one round (a training step and 8 samples) at most every 250 ms


@attrs.frozen
class Usage:
    threads: int
    fds: int
    rss: int


def usage() -> Usage:
    with open("/proc/self/statm") as statm:
        rss_pages = int(statm.read().split()[1])
    return Usage(
        threading.active_count(),
        len(os.listdir("/proc/self/fd")),
        rss_pages * os.sysconf("SC_PAGE_SIZE"),
    )


def soak(server: Any, client: Any, seconds: float, warmup: float) -> tuple[Usage, Usage, int]:
    """Run rounds for `seconds`; the baseline is taken after `warmup` seconds of rounds."""
    trainer = client.create_lora_training_client(base_model=MODEL, rank=4, seed=3)
    sampler = fast_sampler(client, base_model=MODEL)
    prompt = types.ModelInput.from_ints([72, 105])
    started = time.monotonic()
    baseline: Usage | None = None
    peak = Usage(0, 0, 0)
    rounds = 0
    while (now := time.monotonic()) - started < seconds:
        futures = [
            trainer.forward_backward(batch(rounds % 16), "cross_entropy"),
            trainer.optim_step(ADAM),
        ]
        futures += [
            sampler.sample(prompt, 1, types.SamplingParams(max_tokens=4, seed=i)) for i in range(8)
        ]
        for future in futures:
            future.result(timeout=60)
        rounds += 1
        if baseline is None and now - started >= warmup:
            baseline = usage()
        elif baseline is not None:
            current = usage()
            peak = Usage(
                *(
                    max(a, b)
                    for a, b in zip(attrs.astuple(peak), attrs.astuple(current), strict=True)
                )
            )
        time.sleep(max(0.0, ROUND_SECONDS - (time.monotonic() - now)))
    assert baseline is not None
    return baseline, peak, rounds


def _check(baseline: Usage, peak: Usage) -> None:
    assert peak.threads <= baseline.threads + THREAD_SLACK, (baseline, peak)
    assert peak.fds <= baseline.fds + FD_SLACK, (baseline, peak)
    assert peak.rss <= baseline.rss + RSS_SLACK, (baseline, peak)


def _run(
    make_server: Callable[..., Any], make_client: Callable[..., Any], seconds: float, warmup: float
) -> None:
    before = usage()
    server = make_server()
    client = make_client(server.url)
    baseline, peak, rounds = soak(server, client, seconds, warmup)
    _check(baseline, peak)
    client.close()
    server.close()
    deadline = time.monotonic() + 5
    while threading.active_count() > before.threads + THREAD_SLACK and time.monotonic() < deadline:
        time.sleep(0.1)
    after = usage()
    assert after.threads <= before.threads + THREAD_SLACK, (before, after)
    assert after.fds <= before.fds + FD_SLACK, (before, after)
    print(
        f"soak {seconds:.0f} s: {rounds} rounds; baseline {baseline}, peak {peak}; "
        f"before {before}, after close {after}"
    )


def test_soak_in_the_suite(
    make_server: Callable[..., Any], make_client: Callable[..., Any]
) -> None:
    _run(make_server, make_client, seconds=16.0, warmup=4.0)


@pytest.mark.optin
def test_soak_thirty_minutes(
    make_server: Callable[..., Any], make_client: Callable[..., Any]
) -> None:
    _run(make_server, make_client, seconds=1800.0, warmup=60.0)
