"""Runtime against an in-test HTTP service: session, calls, lanes, bounds, attach, close."""

from __future__ import annotations

import logging
import pickle
import random
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from core_fake_service import FakeService, FakeTime, RuntimeFactory, Scripted

from tinker._futures import APIFuture, chain, combine
from tinker._http import Reply
from tinker._retry import SUBMIT
from tinker._runtime import ClientClosedError, Runtime, RuntimeOptions, Traffic
from tinker.config import ClientConfig
from tinker.errors import APIResponseValidationError, APIStatusError, InternalServerError


def test_start_sends_create_session_and_logs_server_messages(
    service: FakeService, make_runtime: RuntimeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    service.push(
        "/api/v1/create_session",
        Scripted(200, {"session_id": "S-9", "info_message": "hello",
                       "warning_message": "careful", "error_message": "degraded"}),
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="tinker"):
        runtime = make_runtime(tags=("a", "b"))
    assert runtime.session_id == "S-9"
    (request,) = service.seen("/api/v1/create_session")
    assert request.body == {"tags": ["a", "b"], "user_metadata": {}, "sdk_version": "0.5.1"}
    levels = {(r.levelno, r.getMessage()) for r in caplog.records}
    assert {(logging.INFO, "hello"), (logging.WARNING, "careful"),
            (logging.ERROR, "degraded")} <= levels  # fmt: skip


def test_start_passes_user_metadata_and_rejects_a_reply_without_session_id(
    service: FakeService,
) -> None:
    config = ClientConfig(api_key="k", base_url=service.url, telemetry=False)
    options = RuntimeOptions(heartbeat=False)
    with Runtime.start(config, user_metadata={"who": "me"}, options=options):
        pass
    assert service.seen("/api/v1/create_session")[0].body["user_metadata"] == {"who": "me"}
    service.push("/api/v1/create_session", Scripted(200, {"type": "create_session"}))
    with pytest.raises(APIResponseValidationError, match="session_id"):
        Runtime.start(config, options=options)


def test_call_decodes_json_reply_and_errors(
    service: FakeService, make_runtime: RuntimeFactory
) -> None:
    runtime = make_runtime()
    assert runtime.call(Traffic.TRAIN, "GET", "/api/v1/healthz") == {
        "method": "GET",
        "path": "/api/v1/healthz",
    }
    service.push("/api/v1/archive", Scripted(302, None, {"Location": "https://x/y"}))
    raw = runtime.call(Traffic.TRAIN, "GET", "/api/v1/archive", result=Reply)
    assert raw.status_code == 302 and raw.headers["Location"] == "https://x/y"
    service.push("/api/v1/archive", Scripted(302, None, {"Location": "https://x/y"}))
    with pytest.raises(APIStatusError) as info:
        runtime.call(Traffic.TRAIN, "GET", "/api/v1/archive")
    assert info.value.status_code == 302
    with pytest.raises(ValueError, match="NaN"):
        runtime.call(Traffic.TRAIN, "POST", "/api/v1/nan", body={"x": float("nan")})
    assert service.seen("/api/v1/nan") == []
    with pytest.raises(TypeError, match="request body"):
        runtime.call(Traffic.TRAIN, "POST", "/api/v1/x", body=object())


def test_submit_policy_retries_past_the_transport_layer(service: FakeService) -> None:
    fake = FakeTime()
    config = ClientConfig(api_key="k", base_url=service.url, telemetry=False, max_retries=1)
    options = RuntimeOptions(heartbeat=False, clock=fake.clock, sleep=fake.sleep)
    with Runtime.start(config, options=options) as runtime:
        service.push("/api/v1/forward", *[Scripted(503)] * 4)
        result = runtime.call(Traffic.TRAIN, "POST", "/api/v1/forward", body={}, retry=SUBMIT)
        assert "request_id" in result
        # transport: 2 attempts each (0.5 s pause); the 5-minute layer pauses 1 s, then ok.
        assert len(service.seen("/api/v1/forward")) == 5
        assert 1.0 in fake.sleeps
        service.push("/api/v1/forward", *[Scripted(500)] * 1000)
        with pytest.raises(InternalServerError):
            runtime.call(Traffic.TRAIN, "POST", "/api/v1/forward", body={}, retry=SUBMIT)
        assert fake.now >= 300.0


@pytest.fixture
def slow_polls(service: FakeService) -> Iterator[FakeService]:
    service.auto_complete = False
    yield service


def test_lane_submits_arrive_in_seq_order_with_retries_and_resolve_concurrently(
    slow_polls: FakeService, make_runtime: RuntimeFactory
) -> None:
    service = slow_polls
    rng = random.Random(7)
    flaky = set(rng.sample(range(1, 201), 30))
    failures: dict[int, int] = {}

    def intercept(path: str, body: Any) -> Scripted | None:
        if path == "/api/v1/forward_backward" and body["seq_id"] in flaky:
            count = failures.get(body["seq_id"], 0)
            if count < 2:
                failures[body["seq_id"]] = count + 1
                return Scripted(503 if count == 0 else 429)
        return None

    service.intercept = intercept
    fake = FakeTime()
    runtime = make_runtime(
        options=RuntimeOptions(heartbeat=False, submit_workers=4, sleep=fake.sleep)
    )
    lane = runtime.lane()
    seq_ids = lane.reserve(200)
    assert seq_ids == list(range(1, 201))

    def submit_one(seq: int) -> APIFuture[Any]:
        submitted = lane.submit(
            seq,
            lambda: runtime.call(
                Traffic.TRAIN, "POST", "/api/v1/forward_backward",
                body={"seq_id": seq}, retry=SUBMIT,
            )["request_id"],
        )  # fmt: skip
        return chain(submitted, lambda rid: runtime.track(rid, "ForwardBackward", None))

    # Submit from several threads in shuffled order: the lane restores seq order.
    order = seq_ids[:]
    rng.shuffle(order)
    futures: dict[int, APIFuture[Any]] = {}
    lock = threading.Lock()

    def producer(chunk: list[int]) -> None:
        for seq in chunk:
            future = submit_one(seq)
            with lock:
                futures[seq] = future

    threads = [threading.Thread(target=producer, args=(order[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    deadline = time.monotonic() + 30
    while len(service.seen("/api/v1/retrieve_future")) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    while time.monotonic() < deadline:
        if all(f.request_id is not None for f in futures.values()):
            break
        time.sleep(0.01)
    arrivals = [r.body["seq_id"] for r in service.seen("/api/v1/forward_backward")]
    assert arrivals == sorted(arrivals)  # retries repeat a seq id, never reorder
    assert sorted(set(arrivals)) == seq_ids
    assert len(arrivals) == 200 + 2 * len(flaky)

    # Results are polled concurrently: the last one resolves while the others are pending.
    last = futures[200]
    service.complete(str(last.request_id), {"n": 200})
    assert last.result(timeout=20) == {"n": 200}
    assert not any(futures[seq].done() for seq in range(1, 200))
    service.complete_many({str(f.request_id): {"n": seq} for seq, f in futures.items()})
    assert [futures[s].result(timeout=20)["n"] for s in seq_ids] == seq_ids


def test_lane_failures_do_not_block_later_submits_and_skip_frees_a_slot(
    make_runtime: RuntimeFactory,
) -> None:
    runtime = make_runtime(options=RuntimeOptions(heartbeat=False, submit_workers=1))
    lane = runtime.lane()
    ran: list[int] = []
    first, second, third, fourth = lane.reserve(4)

    def boom() -> int:
        ran.append(first)
        raise RuntimeError("submit failed")

    later = lane.submit(fourth, lambda: ran.append(fourth) or 4)
    middle = lane.submit(second, lambda: ran.append(second) or 2)
    assert not later.done() and not middle.done()
    failing = lane.submit(first, boom)
    assert isinstance(failing.exception(timeout=5), RuntimeError)
    assert middle.result(timeout=5) == 2
    assert not later.done()  # waits for `third`
    lane.skip(third)
    assert later.result(timeout=5) == 4
    assert ran == [first, second, fourth]
    with pytest.raises(ValueError, match="not reserved"):
        lane.submit(99, lambda: None)
    with pytest.raises(ValueError, match="not reserved or has already run"):
        lane.submit(first, lambda: None)


def test_a_single_worker_pool_never_deadlocks_on_composed_futures(
    make_runtime: RuntimeFactory,
) -> None:
    runtime = make_runtime(options=RuntimeOptions(heartbeat=False, submit_workers=1))
    lane = runtime.lane()
    chunk_futures = []
    for seq in lane.reserve(30):
        submitted = lane.submit(
            seq,
            lambda seq=seq: runtime.call(
                Traffic.TRAIN, "POST", "/api/v1/forward", body={"seq_id": seq}
            )["request_id"],
        )
        chunk_futures.append(chain(submitted, lambda rid: runtime.track(rid, "Forward", None)))
    merged = combine(chunk_futures, lambda values: [v["echo"]["seq_id"] for v in values])
    assert merged.result(timeout=30) == list(range(1, 31))


def test_thousands_of_pending_futures_use_a_bounded_number_of_threads(
    slow_polls: FakeService, make_runtime: RuntimeFactory
) -> None:
    service = slow_polls
    service.hold = 0.05
    baseline = threading.active_count()
    runtime = make_runtime(options=RuntimeOptions(heartbeat=False, poll_workers=16))
    futures = [runtime.track(f"pending-{i}", "Sample", None) for i in range(4000)]
    deadline = time.monotonic() + 30
    while len(service.seen("/api/v1/retrieve_future")) < 200 and time.monotonic() < deadline:
        time.sleep(0.02)
    peak = threading.active_count()
    assert runtime.poller.worker_count <= 16
    assert runtime.poller.pending == 4000
    # Stated bound: submit + blocking + poll workers + 3 (timers, heartbeat, telemetry).
    assert runtime.thread_bound == 16 + 8 + 16 + 3
    # The service's handler threads count too: at most one per concurrent poll connection.
    assert peak - baseline <= runtime.thread_bound + 16 + 1
    service.complete_many({f"pending-{i}": {"i": i} for i in range(4000)})
    results = [f.result(timeout=60)["i"] for f in futures]
    assert results == list(range(4000))
    assert runtime.poller.worker_count <= 16


def test_attach_reuses_the_open_runtime_and_pickle_reattaches(
    service: FakeService, make_runtime: RuntimeFactory
) -> None:
    runtime = make_runtime()
    assert Runtime.attach(runtime.config, runtime.session_id) is runtime
    assert pickle.loads(pickle.dumps(runtime)) is runtime
    runtime.close()
    fresh = Runtime.attach(runtime.config, runtime.session_id)
    try:
        assert fresh is not runtime and fresh.session_id == runtime.session_id
        assert len(service.seen("/api/v1/create_session")) == 1
        assert fresh.call(Traffic.TRAIN, "GET", "/api/v1/x")["path"] == "/api/v1/x"
    finally:
        fresh.close()


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
    pending = runtime.track("never", "Forward", None)
    lane = runtime.lane()
    _, b = lane.reserve(2)
    parked = lane.submit(b, lambda: 1)
    runtime.close()
    runtime.close()
    assert runtime.closed
    assert isinstance(pending.exception(timeout=5), Exception)
    assert isinstance(parked.exception(timeout=5), ClientClosedError)
    with pytest.raises(ClientClosedError):
        runtime.call(Traffic.TRAIN, "GET", "/api/v1/x")
    with pytest.raises(ClientClosedError):
        runtime.lane()


def test_atexit_hook_closes_open_runtimes(make_runtime: RuntimeFactory) -> None:
    from tinker._runtime import _close_all_at_exit

    runtime = make_runtime()
    _close_all_at_exit()
    assert runtime.closed


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
    runtime = Runtime.attach(config, "sess-hang")
    assert runtime.telemetry is not None
    for index in range(150):
        runtime.telemetry.generic_event("test", {"i": index})
    pending = runtime.track("r", "Forward", None)
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
    runtime = Runtime.attach(config, "sess-refused")
    runtime.telemetry.generic_event("x")  # type: ignore[union-attr]
    started = time.monotonic()
    runtime.close()
    assert time.monotonic() - started < 2.5


def test_request_models_go_through_wire_and_results_are_structured(
    service: FakeService, make_runtime: RuntimeFactory
) -> None:
    from tinker import types

    runtime = make_runtime()
    request = types.CreateSamplingSessionRequest(
        session_id="S", sampling_session_seq_id=2, base_model=None, model_path="tinker://r/w/s"
    )
    future = runtime.call(
        Traffic.SESSION,
        "POST",
        "/api/v1/create_sampling_session",
        body=request,
        result=types.UntypedAPIFuture,
    )
    assert isinstance(future, types.UntypedAPIFuture) and future.request_id.startswith("req-")
    (sent,) = service.seen("/api/v1/create_sampling_session")
    assert sent.body == {
        "session_id": "S",
        "sampling_session_seq_id": 2,
        "base_model": None,
        "model_path": "tinker://r/w/s",
    }
    service.push("/api/v1/bad", Scripted(200, {"model_id": "m"}))
    with pytest.raises(APIResponseValidationError, match="UntypedAPIFuture"):
        runtime.call(Traffic.TRAIN, "POST", "/api/v1/bad", result=types.UntypedAPIFuture)

    sample = {"sequences": [{"tokens": [5, 6], "logprobs": [-0.5, -0.25], "stop_reason": "stop"}]}
    service.complete("s-1", sample)
    result = runtime.track("s-1", "Sample", types.SampleResponse).result(timeout=10)
    assert isinstance(result, types.SampleResponse)
    assert result.sequences[0].tokens == [5, 6]
    service.complete("s-2", {"sequences": "nope"})
    error = runtime.track("s-2", "Sample", types.SampleResponse).exception(timeout=10)
    assert isinstance(error, ValueError)
    assert str(error).startswith("Error retrieving result: ")


def test_submit_layer_failures_are_reported_to_telemetry(service: FakeService) -> None:
    fake = FakeTime()
    config = ClientConfig(api_key="k", base_url=service.url, telemetry=True, max_retries=0)
    options = RuntimeOptions(heartbeat=False, clock=fake.clock, sleep=fake.sleep)
    with Runtime.start(config, options=options) as runtime:
        service.push("/api/v1/optim_step", Scripted(503))
        runtime.call(Traffic.TRAIN, "POST", "/api/v1/optim_step", body={}, retry=SUBMIT)
        service.push("/api/v1/optim_step", Scripted(400, {"detail": "bad"}))
        with pytest.raises(APIStatusError):
            runtime.call(Traffic.TRAIN, "POST", "/api/v1/optim_step", body={}, retry=SUBMIT)
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
