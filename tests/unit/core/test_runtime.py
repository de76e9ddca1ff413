"""Runtime lifecycle: bounded threads, the pools, close (idempotent, prompt, failing what
waits), and the session counters."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from core_helpers import RuntimeFactory
from support.fake_service import FakeService, Reply

from tinker._calls import ApiCall
from tinker._futures import APIFuture, completed
from tinker._retry import SUBMIT
from tinker._runtime import ClientClosedError, RuntimeOptions
from tinker._session import attach, open_session
from tinker._transport import Traffic
from tinker.config import ClientConfig


@pytest.fixture
def slow_polls(service: FakeService) -> Iterator[FakeService]:
    service.auto_complete = False
    yield service


def test_thousands_of_pending_futures_use_a_bounded_number_of_threads(
    slow_polls: FakeService, make_runtime: RuntimeFactory
) -> None:
    service = slow_polls
    service.hold = 0.05
    baseline = threading.active_count()
    runtime = make_runtime(options=RuntimeOptions(heartbeat=False, poll_workers=16))
    futures = [runtime.poller.track(f"pending-{i}", "Sample", as_is) for i in range(4000)]
    deadline = time.monotonic() + 30
    while len(service.seen("/api/v1/retrieve_future")) < 200 and time.monotonic() < deadline:
        time.sleep(0.02)
    peak = threading.active_count()
    assert runtime.poller.worker_count <= 16
    assert runtime.poller.pending == 4000
    # Stated bound: training submit + sampling submit + blocking + poll workers + 3 (timers,
    # heartbeat, telemetry).
    assert runtime.thread_bound == 16 + 16 + 8 + 16 + 3
    # The service's handler threads count too: at most one per concurrent poll connection.
    assert peak - baseline <= runtime.thread_bound + 16 + 1
    service.complete_many({f"pending-{i}": {"i": i} for i in range(4000)})
    results = [f.result(timeout=60)["i"] for f in futures]
    assert results == list(range(4000))
    assert runtime.poller.worker_count <= 16


def test_seq_counters_start_at_zero_and_are_thread_safe(make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime()
    assert [runtime.next_model_seq_id() for _ in range(3)] == [0, 1, 2]
    values: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(200):
            value = runtime.next_sampling_session_seq_id()
            with lock:
                values.append(value)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(values) == list(range(800))


def test_spawn_runs_on_the_pool(make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime()
    future = runtime.spawn(lambda a, b: (threading.current_thread().name, a + b), 2, 3)
    name, total = future.result(timeout=5)
    assert isinstance(future, APIFuture)
    assert name.startswith("tinker-blocking") and total == 5


def test_close_is_idempotent_and_later_calls_fail(make_runtime: RuntimeFactory) -> None:
    runtime = make_runtime()
    pending = runtime.poller.track("never", "Forward", as_is)
    lane = runtime.lane()
    _, b = lane.reserve(2)
    parked = lane.submit(b, lambda: completed(1))
    runtime.close()
    runtime.close()
    assert runtime.closed
    assert isinstance(pending.exception(timeout=5), Exception)
    assert isinstance(parked.exception(timeout=5), ClientClosedError)
    with pytest.raises(ClientClosedError):
        runtime.call(ApiCall(traffic=Traffic.TRAIN, method="GET", path="/api/v1/x"))
    with pytest.raises(ClientClosedError):
        runtime.lane()


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def test_close_returns_within_two_seconds_when_the_server_hangs(black_hole: str) -> None:
    config = ClientConfig(api_key="k", base_url=black_hole, telemetry=True, max_retries=0)
    runtime = attach(config, "sess-hang")
    assert runtime.telemetry is not None
    for index in range(150):
        runtime.telemetry.generic_event("test", {"i": index})
    pending = runtime.poller.track("r", "Forward", as_is)
    time.sleep(0.2)  # let the flusher and a poll get stuck on the silent server
    started = time.monotonic()
    runtime.close()
    elapsed = time.monotonic() - started
    assert elapsed < 2.5
    assert pending.exception(timeout=1) is not None


def test_close_returns_quickly_when_the_server_refuses(black_hole: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = ClientConfig(api_key="k", base_url=f"http://127.0.0.1:{port}", telemetry=True)
    runtime = attach(config, "sess-refused")
    runtime.telemetry.generic_event("x")  # type: ignore[union-attr]
    started = time.monotonic()
    runtime.close()
    assert time.monotonic() - started < 2.5


def test_the_default_thread_bound_is_the_documented_107(service: FakeService) -> None:
    config = ClientConfig(api_key="k", base_url=service.url, telemetry=False)
    with open_session(config, options=RuntimeOptions(heartbeat=False)) as runtime:
        assert runtime.thread_bound == 107  # README.md and docs/concepts.md state it


def test_a_closing_runtime_fails_everything_pending_at_once_with_one_log_line(
    service: FakeService, make_runtime: RuntimeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = make_runtime()
    gate = threading.Event()
    blocked = [runtime.spawn(gate.wait, 5) for _ in range(8)]  # every blocking worker
    queued = [runtime.spawn(lambda: "late") for _ in range(20)]
    service.push("/api/v1/slow", *[Reply(503)] * 20)
    retrying = runtime.submit(
        ApiCall(traffic=Traffic.TRAIN, method="POST", path="/api/v1/slow", body={}, retry=SUBMIT)
    )
    service.wait_seen("/api/v1/slow", 1)
    # The 503 was answered and its retry logged (counted right after) before close() is heard.
    deadline = time.monotonic() + 10
    while not runtime.metrics.snapshot().retries and time.monotonic() < deadline:
        time.sleep(0.005)
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG, logger="tinker"):
        caplog.clear()
        runtime.close()
    assert time.monotonic() - started < 2.5
    assert isinstance(retrying.exception(timeout=2), ClientClosedError)  # its pause was dropped
    assert all(isinstance(f.exception(timeout=0), ClientClosedError) for f in queued)
    # Work already running fails at once too; it finishes in the background, unheard.
    assert all(isinstance(f.exception(timeout=0), ClientClosedError) for f in blocked)
    gate.set()
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert lines == [
        "the client was closed with 28 operations pending; they failed with ClientClosedError"
    ]


def as_is(body: Any) -> Any:
    return body
