"""Soak: mixed training and sampling at a bounded rate; threads, fds and RSS must not grow with
the number of rounds.

Pools grow lazily up to what the workload keeps in flight, so the baseline (taken after a
warm-up) may sit below the plateau: the slack is that concurrency, and the soak runs enough
rounds after the baseline that leaking even one thread or descriptor per round exceeds it.
The suite runs a 16 s soak; the 30-minute one is opt-in (TINKER_OPTIN=1).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from tinker import types

from .runs import ADAM, MODEL, batch, fast_sampler

MIB = 1024 * 1024
IN_FLIGHT = 10  # requests one round keeps in flight: a training step (2) and 8 samples
# Each request in flight may hold one pooled client worker and one connection, i.e. a server
# connection thread and two descriptors (both socket ends live in this process).
THREAD_SLACK = 2 * IN_FLIGHT
FD_SLACK = 2 * IN_FLIGHT
RSS_SLACK = 64 * MIB
MIN_ROUNDS = 2 * max(THREAD_SLACK, FD_SLACK)  # after the baseline: a leak of 1 per round shows
CLOSED_SLACK = 4  # threads or descriptors left once the client and server are closed
ROUND_SECONDS = 0.25  # one round at most every 250 ms


@attrs.frozen
class Usage:
    threads: int
    fds: int
    rss: int


@attrs.frozen
class Soak:
    baseline: Usage
    peak: Usage
    rounds: int  # after the baseline


def usage() -> Usage:
    with open("/proc/self/statm") as statm:
        rss_pages = int(statm.read().split()[1])
    return Usage(
        threading.active_count(),
        len(os.listdir("/proc/self/fd")),
        rss_pages * os.sysconf("SC_PAGE_SIZE"),
    )


def soak(
    one_round: Callable[[int], None], seconds: float, warmup: float, pace: float = ROUND_SECONDS
) -> Soak:
    """Run rounds for at least `seconds` and MIN_ROUNDS rounds after the baseline, which is taken
    after `warmup` seconds of rounds; the peak is the largest usage seen after it."""
    started = time.monotonic()
    baseline: Usage | None = None
    peak = Usage(0, 0, 0)
    rounds = 0
    while (now := time.monotonic()) - started < seconds or rounds < MIN_ROUNDS:
        one_round(rounds)
        if baseline is None:
            if now - started >= warmup:
                baseline = usage()
        else:
            rounds += 1
            peak = Usage(
                *(
                    max(a, b)
                    for a, b in zip(attrs.astuple(peak), attrs.astuple(usage()), strict=True)
                )
            )
        time.sleep(max(0.0, pace - (time.monotonic() - now)))
    assert baseline is not None
    return Soak(baseline, peak, rounds)


def training_and_sampling(client: Any) -> Callable[[int], None]:
    """A round: one training step and 8 samples submitted together, then all awaited."""
    trainer = client.create_lora_training_client(base_model=MODEL, rank=4, seed=3)
    sampler = fast_sampler(client, base_model=MODEL)
    prompt = types.ModelInput.from_ints([72, 105])

    def one_round(index: int) -> None:
        futures = [
            trainer.forward_backward(batch(index % 16), "cross_entropy"),
            trainer.optim_step(ADAM),
        ]
        futures += [
            sampler.sample(prompt, 1, types.SamplingParams(max_tokens=4, seed=i)) for i in range(8)
        ]
        assert len(futures) == IN_FLIGHT
        for future in futures:
            future.result(timeout=60)

    return one_round


def _check(result: Soak) -> None:
    baseline, peak = result.baseline, result.peak
    assert peak.threads <= baseline.threads + THREAD_SLACK, result
    assert peak.fds <= baseline.fds + FD_SLACK, result
    assert peak.rss <= baseline.rss + RSS_SLACK, result


def _run(
    make_server: Callable[..., Any], make_client: Callable[..., Any], seconds: float, warmup: float
) -> None:
    before = usage()
    server = make_server()
    client = make_client(server.url)
    try:
        result = soak(training_and_sampling(client), seconds, warmup)
    finally:  # a failure must not leave their threads to the tests that follow
        client.close()
        server.close()
    _check(result)
    deadline = time.monotonic() + 5
    while threading.active_count() > before.threads + CLOSED_SLACK and time.monotonic() < deadline:
        time.sleep(0.1)
    after = usage()
    assert after.threads <= before.threads + CLOSED_SLACK, (before, after)
    assert after.fds <= before.fds + CLOSED_SLACK, (before, after)
    print(f"soak {seconds:.0f} s: {result}; before {before}, after close {after}")


def test_soak_in_the_suite(
    make_server: Callable[..., Any], make_client: Callable[..., Any]
) -> None:
    _run(make_server, make_client, seconds=16.0, warmup=4.0)


@pytest.mark.optin
def test_soak_thirty_minutes(
    make_server: Callable[..., Any], make_client: Callable[..., Any]
) -> None:
    _run(make_server, make_client, seconds=1800.0, warmup=60.0)


@pytest.fixture
def leaked() -> Iterator[list[Callable[[], None]]]:
    """Undo functions of what a leaking round left behind, run after the test."""
    undo: list[Callable[[], None]] = []
    yield undo
    for step in undo:
        step()


@pytest.mark.parametrize("what", ["thread", "fd"])
def test_the_soak_check_fails_on_one_leak_per_round(
    what: str, leaked: list[Callable[[], None]]
) -> None:
    stop = threading.Event()
    leaked.append(stop.set)

    def leaking_round(index: int) -> None:
        if what == "thread":
            threading.Thread(target=stop.wait, name=f"leak-{index}", daemon=True).start()
        else:
            read_end, write_end = os.pipe()
            os.close(write_end)
            leaked.append(lambda: os.close(read_end))

    result = soak(leaking_round, seconds=0.0, warmup=0.0, pace=0.0)
    assert result.rounds == MIN_ROUNDS
    with pytest.raises(AssertionError):
        _check(result)
