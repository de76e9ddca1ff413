"""The benchmark stub answers the Tinker protocol correctly (so the harness cannot rot)."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from benchmarks.client_runner import split_chunks
from benchmarks.stub import StubState, start_stub
from benchmarks.stub.protocol import dumps


@pytest.fixture(scope="module")
def stub() -> Iterator[tuple[str, int, StubState]]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def start() -> None:
        server, state = await start_stub("127.0.0.1", 0)
        holder.update(server=server, state=state, port=server.sockets[0].getsockname()[1])
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()))
    thread.daemon = True
    thread.start()
    assert ready.wait(10)
    yield "127.0.0.1", holder["port"], holder["state"]
    loop.call_soon_threadsafe(holder["server"].close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def call(stub: tuple[str, int, StubState], method: str, path: str, body: Any = None) -> Any:
    connection = http.client.HTTPConnection(stub[0], stub[1], timeout=10)
    payload = None if body is None else json.dumps(body)
    connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    data = json.loads(response.read())
    connection.close()
    return response.status, data


def submit_and_get(stub: tuple[str, int, StubState], path: str, body: Any) -> Any:
    status, future = call(stub, "POST", path, body)
    assert status == 200 and isinstance(future["request_id"], str)
    status, result = call(
        stub, "POST", "/api/v1/retrieve_future", {"request_id": future["request_id"]}
    )
    assert status == 200
    return result


def test_session_endpoints(stub: tuple[str, int, StubState]) -> None:
    status, first = call(stub, "POST", "/api/v1/create_session", {"tags": [], "sdk_version": "x"})
    _, second = call(stub, "POST", "/api/v1/create_session", {"tags": []})
    assert status == 200 and first["type"] == "create_session"
    assert first["session_id"] != second["session_id"]
    assert call(stub, "POST", "/api/v1/session_heartbeat", {"session_id": "s"}) == (
        200,
        {"type": "session_heartbeat"},
    )
    assert call(stub, "POST", "/api/v1/telemetry", {"events": []}) == (200, {"status": "accepted"})
    assert call(stub, "GET", "/api/v1/healthz") == (200, {"status": "ok"})
    _, caps = call(stub, "GET", "/api/v1/get_server_capabilities")
    assert [m["model_name"] for m in caps["supported_models"]] == ["bench/stub-model"]
    _, sampler = call(
        stub,
        "POST",
        "/api/v1/create_sampling_session",
        {"session_id": "S", "sampling_session_seq_id": 3, "base_model": "m", "model_path": None},
    )
    assert sampler == {"type": "create_sampling_session", "sampling_session_id": "S:sample:3"}


def test_sample_future_returns_a_sample_response(stub: tuple[str, int, StubState]) -> None:
    result = submit_and_get(
        stub,
        "/api/v1/asample",
        {
            "num_samples": 2,
            "prompt": {"chunks": [{"tokens": [5, 6, 7]}]},
            "sampling_params": {"max_tokens": 4},
            "sampling_session_id": "S:sample:0",
            "seq_id": 0,
            "prompt_logprobs": True,
            "topk_prompt_logprobs": 2,
        },
    )
    assert result["type"] == "sample"
    assert len(result["sequences"]) == 2
    for sequence in result["sequences"]:
        assert len(sequence["tokens"]) == 4 == len(sequence["logprobs"])
        assert sequence["stop_reason"] == "length"
    assert result["prompt_logprobs"] == [None, -1.0, -1.0]
    assert result["topk_prompt_logprobs"][0] is None
    assert result["topk_prompt_logprobs"][1] == [[0, -1.0], [0, -1.0]]


def test_training_futures(stub: tuple[str, int, StubState]) -> None:
    created = submit_and_get(
        stub,
        "/api/v1/create_model",
        {
            "session_id": "S",
            "model_seq_id": 0,
            "base_model": "base",
            "user_metadata": None,
            "lora_config": {
                "rank": 4,
                "seed": None,
                "train_unembed": True,
                "train_mlp": True,
                "train_attn": True,
            },
        },
    )
    assert created == {"type": "create_model", "model_id": "S:train:0"}
    _, info = call(stub, "POST", "/api/v1/get_info", {"model_id": "S:train:0"})
    assert (info["model_id"], info["model_data"]["model_name"], info["lora_rank"]) == (
        "S:train:0",
        "base",
        4,
    )
    datum = {"loss_fn_inputs": {}}
    output = submit_and_get(
        stub,
        "/api/v1/forward_backward",
        {
            "forward_backward_input": {
                "data": [
                    {**datum, "model_input": {"chunks": [{"tokens": [1, 2, 3]}]}},
                    {
                        **datum,
                        "model_input": {"chunks": [{"tokens": [1]}, {"tokens": [2, 3, 4, 5]}]},
                    },
                ],
                "loss_fn": "cross_entropy",
                "loss_fn_config": None,
            },
            "model_id": "S:train:0",
            "seq_id": 1,
        },
    )
    lengths = [o["logprobs"]["shape"] for o in output["loss_fn_outputs"]]
    assert lengths == [[3], [5]]
    assert output["loss_fn_outputs"][1]["logprobs"]["dtype"] == "float32"
    assert all(key.count(":") == 1 for key in output["metrics"])
    assert submit_and_get(
        stub, "/api/v1/optim_step", {"adam_params": {}, "model_id": "S:train:0", "seq_id": 2}
    ) == {"metrics": {}}
    ephemeral = submit_and_get(
        stub,
        "/api/v1/save_weights_for_sampler",
        {"model_id": "S:train:0", "sampling_session_seq_id": 1, "seq_id": 3},
    )
    assert ephemeral == {
        "type": "save_weights_for_sampler",
        "sampling_session_id": "S:train:0:sample:1",
    }
    named = submit_and_get(
        stub,
        "/api/v1/save_weights_for_sampler",
        {"model_id": "S:train:0", "path": "s1", "seq_id": 4},
    )
    assert named["path"] == "tinker://S:train:0/sampler_weights/s1"


def test_errors_and_unknown_routes(stub: tuple[str, int, StubState]) -> None:
    status, body = call(stub, "POST", "/api/v1/retrieve_future", {"request_id": "nope"})
    assert status == 404 and "nope" in body["detail"]
    assert call(stub, "GET", "/api/v1/nothing_here")[0] == 404
    connection = http.client.HTTPConnection(stub[0], stub[1], timeout=10)
    connection.request("POST", "/api/v1/create_session", body="{not json")
    assert connection.getresponse().status == 400


def test_keep_alive_answers_pipelined_requests_in_order(stub: tuple[str, int, StubState]) -> None:
    request = (
        b"POST /api/v1/telemetry HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
        b"GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    with socket.create_connection(stub[:2], timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while received.count(b"HTTP/1.1 200") < 2 or not received.endswith(b'"ok"}'):
            chunk = sock.recv(65536)
            assert chunk
            received += chunk
    assert received.index(b"accepted") < received.index(b'"ok"')


def test_delayed_future_is_long_polled_and_its_completion_recorded(
    stub: tuple[str, int, StubState],
) -> None:
    call(stub, "POST", "/_bench/reset", {})
    call(stub, "POST", "/_bench/config", {"sample_delay": 0.05, "long_poll_seconds": 10})
    try:
        result = submit_and_get(
            stub,
            "/api/v1/asample",
            {"num_samples": 1, "prompt": {"chunks": [{"tokens": [4242]}]}, "sampling_params": {}},
        )
    finally:
        call(stub, "POST", "/_bench/config", {"sample_delay": 0.0})
    assert len(result["sequences"][0]["tokens"]) == 16
    _, completions = call(stub, "GET", "/_bench/completions")
    assert list(completions) == ["4242"]


def test_long_poll_bound_answers_408_try_again(stub: tuple[str, int, StubState]) -> None:
    call(stub, "POST", "/_bench/config", {"sample_delay": 60, "long_poll_seconds": 0.01})
    try:
        _, future = call(stub, "POST", "/api/v1/asample", {"prompt": {"chunks": []}})
        status, body = call(stub, "POST", "/api/v1/retrieve_future", future)
    finally:
        call(stub, "POST", "/_bench/config", {"sample_delay": 0.0, "long_poll_seconds": 20})
    assert status == 408
    assert body == {
        "type": "try_again",
        "request_id": future["request_id"],
        "queue_state": "active",
    }


def test_config_rejects_unknown_fields(stub: tuple[str, int, StubState]) -> None:
    status, body = call(stub, "POST", "/_bench/config", {"no_such_knob": 1})
    assert status == 400 and "no_such_knob" in body["detail"]


def test_raw_floor_chunks_like_the_sdks() -> None:
    assert [len(c) for c in split_chunks(list(range(128)), [6144] * 128)] == [81, 47]
    assert [len(c) for c in split_chunks(list(range(130)), [1] * 130)] == [128, 2]
    assert [len(c) for c in split_chunks([0, 1], [600_000, 1])] == [1, 1]


def test_spread_gives_each_prompt_key_its_own_fixed_delay() -> None:
    delays: list[float] = []
    state = StubState(schedule=lambda delay, _fn: delays.append(delay))
    state.config.sample_delay, state.config.sample_delay_spread = 0.5, 2.0
    for key in (11, 12, 11):
        body = json.dumps({"prompt": {"chunks": [{"tokens": [key]}]}}).encode()
        state.handle("POST", "/api/v1/asample", body)
    assert delays[0] == delays[2]
    assert delays[0] != delays[1]
    assert all(0.5 <= d < 2.5 for d in delays)


def test_the_038_protocol_protobuf_bodies_results_and_batch_polls() -> None:
    from benchmarks.stub.protocol import Hold
    from tinker import types
    from tinker._wire import proto
    from tinker._wire.codec import WireCodec

    scheduled: list[Callable[[], None]] = []
    state = StubState(schedule=lambda _delay, fn: scheduled.append(fn))
    assert state.handle("POST", "/api/v1/client/config", b"{}").body == b"{}"
    state.config.client_config = {"sample_use_retrieve_futures": True}
    answer = state.handle("POST", "/api/v1/client/config", b"{}")
    assert json.loads(answer.body) == {"sample_use_retrieve_futures": True}

    datum = types.Datum(
        model_input=types.ModelInput.from_ints([1, 2, 3]),
        loss_fn_inputs={
            "target_tokens": types.TensorData(data=[2, 3, 4], dtype="int64", shape=[3]),
            "weights": types.TensorData(data=[1.0, 1.0, 1.0], dtype="float32", shape=[3]),
        },
    )
    request = types.ForwardBackwardRequest(
        forward_backward_input=types.ForwardBackwardInput(data=[datum], loss_fn="cross_entropy"),
        model_id="m",
        seq_id=1,
    )
    encoded = WireCodec(era="0.38", compress_forward_backward=True).encode(
        "/api/v1/forward_backward", request
    )
    headers = {k.lower(): v for k, v in encoded.headers.items()}
    submitted = state.handle("POST", "/api/v1/forward_backward", encoded.content, headers)
    request_id = json.loads(submitted.body)["request_id"]
    poll = json.dumps({"request_id": request_id}).encode()
    as_json = state.handle("POST", "/api/v1/retrieve_future", poll)
    assert json.loads(as_json.body)["metrics"] == {"loss:sum": 3.0}
    accept = {"accept": "application/x-protobuf"}
    as_proto = state.handle("POST", "/api/v1/retrieve_future", poll, accept)
    assert as_proto.content_type == "application/x-protobuf"
    output = proto.decode_forward_backward_output(as_proto.body)
    assert output.metrics == {"loss:sum": 3.0}
    assert [len(o["logprobs"].data) for o in output.loss_fn_outputs] == [3]

    # Samples complete later; the batch poll long-polls until one of its target finishes.
    state.config.sample_delay = 1.0
    sample = {"prompt": {"chunks": [{"tokens": [5]}]}, "sampling_session_id": "s", "seq_id": 0}
    sample_id = json.loads(state.handle("POST", "/api/v1/asample", dumps(sample)).body)[
        "request_id"
    ]
    batch = {"target": {"sampling_session_id": "s", "cloned_sampler_id": 0}, "prev_cursor": 0}
    held = state.handle("POST", "/api/v1/retrieve_futures", dumps(batch))
    assert isinstance(held, Hold) and held.seconds == 45.0
    woken: list[Any] = []
    held.waiters.append(lambda: woken.append(held.respond()))
    scheduled.pop()()  # the sample finishes
    (reply,) = woken
    assert json.loads(reply.body) == {
        "completions": [{"state": "finished", "request_id": sample_id}],
        "cursor": 1,
    }
    sample_proto = state.handle(
        "POST", "/api/v1/retrieve_future", dumps({"request_id": sample_id}), accept
    )
    response = proto.decode_sample_response(sample_proto.body)
    assert len(response.sequences[0].tokens) == 16
    acked = {**batch, "prev_cursor": 1, "timeout": 0}
    assert json.loads(state.handle("POST", "/api/v1/retrieve_futures", dumps(acked)).body) == {
        "completions": [],
        "cursor": 1,
    }
