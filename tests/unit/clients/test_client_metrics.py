"""Client metrics: the recorder's arithmetic, endpoint names, retry causes, and what a client's
requests, retries and polls leave in `metrics()` (exact counts and bytes against the fake)."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from support.fake_service import FakeService, Reply

from tinker import types
from tinker._poller import NotReady
from tinker.errors import APIConnectionError, APITimeoutError, InternalServerError
from tinker.metrics import (
    LATENCY_BUCKETS,
    ClientMetrics,
    MetricsSnapshot,
    endpoint_name,
    retry_cause,
)


def _body_bytes(body: Any) -> int:
    return len(json.dumps(body).encode())  # what the fake service sends for a JSON body


def test_endpoint_names_replace_the_ids_that_follow_a_collection() -> None:
    assert endpoint_name("post", "/api/v1/forward_backward") == "POST /api/v1/forward_backward"
    assert (
        endpoint_name("DELETE", "/api/v1/training_runs/run-7/checkpoints/weights/step-3")
        == "DELETE /api/v1/training_runs/{id}/checkpoints/{id}/step-3"
    )
    assert endpoint_name("GET", "/api/v1/samplers/s:1?x=2") == "GET /api/v1/samplers/{id}"
    assert endpoint_name("GET", "/api/v1/training_runs") == "GET /api/v1/training_runs"


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (InternalServerError("boom", status_code=503), "http_503"),
        (APITimeoutError("late"), "timeout"),
        (APIConnectionError("gone"), "connection"),
        (TimeoutError(), "timeout"),
        (NotReady(back_off=True), "http_429"),
        (NotReady(), None),  # a poll that is not ready yet is no failure
        (KeyError("x"), "KeyError"),
    ],
)
def test_retry_causes(error: BaseException, cause: str | None) -> None:
    assert retry_cause(error) == cause


def test_the_recorder_sums_requests_latency_and_bytes_per_endpoint() -> None:
    metrics = ClientMetrics()
    metrics.request("POST", "/a", status=200, seconds=0.004, sent=10, received=3)
    metrics.request("POST", "/a", status=503, seconds=0.2, sent=10, received=0)
    metrics.request("POST", "/a", status=None, error="APIConnectionError", seconds=100.0, sent=10,
                    received=0)  # fmt: skip
    metrics.request("GET", "/b", status=200, seconds=0.001, sent=0, received=7)
    metrics.retried(InternalServerError("x", status_code=503))
    metrics.retried(NotReady())
    metrics.queue_state("active")
    metrics.queue_state("paused_capacity")
    metrics.queue_state("active")
    snap = metrics.snapshot()
    a = snap.endpoints["POST /a"]
    assert (a.requests, dict(a.statuses), dict(a.errors)) == (
        3,
        {200: 1, 503: 1},
        {"APIConnectionError": 1},
    )
    assert (a.bytes_sent, a.bytes_received) == (30, 3)
    assert a.latency.count == 3 and a.latency.total == pytest.approx(100.204)
    assert (a.latency.minimum, a.latency.maximum) == (0.004, 100.0)
    expected = [0] * (len(LATENCY_BUCKETS) + 1)
    expected[LATENCY_BUCKETS.index(0.005)] = 1
    expected[LATENCY_BUCKETS.index(0.25)] = 1
    expected[-1] = 1
    assert list(a.latency.counts) == expected
    assert a.latency.quantile(0.5) == 0.25 and a.latency.quantile(1.0) == 100.0
    assert snap.endpoints["GET /b"].latency.counts[0] == 1  # 1 ms: the first bucket (<=)
    assert (snap.requests, snap.bytes_sent, snap.bytes_received) == (4, 30, 10)
    assert snap.retries == {"http_503": 1}
    assert snap.queue_states == {"active": 2, "paused_capacity": 1}
    assert json.loads(json.dumps(snap.as_dict()))["endpoints"]["POST /a"]["statuses"] == {
        "200": 1,
        "503": 1,
    }


def test_a_snapshot_is_a_copy() -> None:
    metrics = ClientMetrics()
    metrics.request("GET", "/a", status=200, seconds=0.1, sent=0, received=1)
    before = metrics.snapshot()
    metrics.request("GET", "/a", status=200, seconds=0.1, sent=0, received=1)
    assert before.endpoints["GET /a"].requests == 1
    assert metrics.snapshot().endpoints["GET /a"].requests == 2
    assert ClientMetrics().snapshot() == MetricsSnapshot(endpoints={}, retries={}, queue_states={})
    with pytest.raises(ValueError, match="q must be in"):
        before.endpoints["GET /a"].latency.quantile(0.0)


class _Recording:
    """A MetricsSink that keeps every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def request(
        self, endpoint: str, outcome: str, seconds: float, sent: int, received: int
    ) -> None:
        self.calls.append(("request", endpoint, outcome, sent, received))

    def retry(self, cause: str) -> None:
        self.calls.append(("retry", cause))

    def queue_state(self, state: str) -> None:
        self.calls.append(("queue_state", state))


def test_the_sink_hears_every_measurement() -> None:
    sink = _Recording()
    metrics = ClientMetrics(sink)
    metrics.request("GET", "/api/v1/sessions/abc", status=404, seconds=0.1, sent=0, received=2)
    metrics.request(
        "GET", "/x", status=None, error="APITimeoutError", seconds=1, sent=5, received=0
    )
    metrics.retried(APITimeoutError("late"))
    metrics.retried(NotReady())
    metrics.queue_state("paused_rate_limit")
    assert sink.calls == [
        ("request", "GET /api/v1/sessions/{id}", "404", 0, 2),
        ("request", "GET /x", "APITimeoutError", 5, 0),
        ("retry", "timeout"),
        ("queue_state", "paused_rate_limit"),
    ]


def test_a_client_counts_its_requests_retries_and_bytes(service: Any, fake: FakeService) -> None:
    capabilities = {"supported_models": [{"model_name": "m"}]}
    fake.direct("GET", "/api/v1/get_server_capabilities", lambda _body: capabilities)
    fake.push("/api/v1/get_server_capabilities", Reply(503, {"e": 1}, {"retry-after-ms": "1"}))
    service.get_server_capabilities()
    snap = service.metrics()
    endpoint = snap.endpoints["GET /api/v1/get_server_capabilities"]
    assert dict(endpoint.statuses) == {503: 1, 200: 1} and endpoint.errors == {}
    assert endpoint.bytes_sent == 0
    assert endpoint.bytes_received == _body_bytes({"e": 1}) + _body_bytes(capabilities)
    assert snap.retries == {"http_503": 1}
    create = snap.endpoints["POST /api/v1/create_session"]
    assert create.requests == 1 and create.bytes_sent > 0


def test_polls_count_their_queue_states_and_429s(service: Any, fake: FakeService) -> None:
    fake.future(
        "/api/v1/forward",
        lambda _body: [
            Reply(408, {"type": "try_again", "queue_state": "paused_capacity"}),
            Reply(429, {"e": 1}, {"retry-after-ms": "1"}),
            Reply(408, {"type": "try_again", "queue_state": "active"}),
            {"loss_fn_output_type": "x", "loss_fn_outputs": [], "metrics": {"loss:sum": 1.0}},
        ],
    )
    trainer = service.create_lora_training_client("base/model", rank=8)
    datum = types.Datum(
        model_input=types.ModelInput.from_ints([1, 2]),
        loss_fn_inputs={"target_tokens": [2, 3], "weights": [1.0, 1.0]},
    )
    trainer.forward([datum], "cross_entropy").result(timeout=30)
    snap = trainer.metrics()
    assert snap.queue_states == {"paused_capacity": 1, "active": 1}
    assert snap.retries == {"http_429": 1}  # polling again after a 408 is no retry
    polls = snap.endpoints["POST /api/v1/retrieve_future"]
    assert polls.statuses[408] == 2 and polls.statuses[429] == 1
    assert trainer.holder.metrics is service.holder.metrics  # one session, one recorder


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_counts_only_its_own_requests(service: Any, fake: FakeService) -> None:
    capabilities = {"supported_models": [{"model_name": "m"}]}
    fake.direct("GET", "/api/v1/get_server_capabilities", lambda _body: capabilities)
    service.get_server_capabilities()
    assert service.metrics().endpoints["GET /api/v1/get_server_capabilities"].requests == 1
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it sees, then leave at once
        try:
            before = service.metrics().requests
            service.get_server_capabilities()
            after = service.metrics().endpoints["GET /api/v1/get_server_capabilities"].requests
            os.write(write, f"{before} {after}".encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        seen = pipe.read()
    os.waitpid(pid, 0)
    assert seen == "0 1"
    assert service.metrics().endpoints["GET /api/v1/get_server_capabilities"].requests == 1


def test_the_retries_of_opening_the_session_are_counted(fake: FakeService) -> None:
    from tinker.service_client import ServiceClient

    fake.push("/api/v1/create_session", Reply(502, {"e": 1}, {"retry-after-ms": "1"}))
    with ServiceClient(api_key="k", base_url=fake.url, telemetry=False) as client:
        snap = client.metrics()
    assert dict(snap.endpoints["POST /api/v1/create_session"].statuses) == {502: 1, 200: 1}
    assert snap.retries == {"http_502": 1}


def test_snapshots_add_up_per_endpoint_with_their_histograms() -> None:
    session, rest = ClientMetrics(), ClientMetrics()
    session.request("POST", "/api/v1/create_session", status=200, seconds=0.003, sent=9, received=4)
    rest.request("POST", "/api/v1/create_session", status=503, seconds=0.2, sent=9, received=0)
    rest.request(
        "GET", "/api/v1/healthz", status=None, error="timeout", seconds=2.0, sent=0, received=0
    )
    rest.retried(InternalServerError("x", status_code=503))
    session.queue_state("active")
    rest.queue_state("active")
    both = session.snapshot() + rest.snapshot()
    create = both.endpoints["POST /api/v1/create_session"]
    assert (create.requests, dict(create.statuses)) == (2, {200: 1, 503: 1})
    assert (create.bytes_sent, create.bytes_received) == (18, 4)
    assert (create.latency.minimum, create.latency.maximum) == (0.003, 0.2)
    assert create.latency.total == pytest.approx(0.203)
    assert sum(create.latency.counts) == 2 and create.latency.counts[2] == 1  # 0.003 <= 0.005
    assert both.endpoints["GET /api/v1/healthz"].errors == {"timeout": 1}
    assert (both.retries, both.queue_states) == ({"http_503": 1}, {"active": 2})
