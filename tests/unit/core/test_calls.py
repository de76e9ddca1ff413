"""ApiCall and the runner: encoding, decoding, retries through the runtime, polled results."""

from __future__ import annotations

from typing import Any

import pytest
from core_helpers import RuntimeFactory
from support.fake_service import FakeService, FakeTime, Reply

from tinker import types
from tinker._calls import ApiCall
from tinker._futures import flatten
from tinker._retry import SUBMIT
from tinker._runtime import Runtime, RuntimeOptions
from tinker._session import open_session
from tinker._transport import Reply as HttpReply
from tinker._transport import Traffic
from tinker.config import ClientConfig
from tinker.errors import APIResponseValidationError, APIStatusError, InternalServerError


def call(runtime: Runtime, method: str, path: str, **fields: Any) -> Any:
    """Run one call in this thread (TRAIN traffic unless told otherwise)."""
    traffic = fields.pop("traffic", Traffic.TRAIN)
    return runtime.call(ApiCall(traffic=traffic, method=method, path=path, **fields))


def test_encoding_is_compact_utf8_json_and_refuses_nan() -> None:
    encode = ApiCall(traffic=Traffic.TRAIN, method="POST", path="/x", body={"a": [1, 2], "t": "é"})
    request = encode.encode()
    assert request.content == '{"a":[1,2],"t":"é"}'.encode()
    assert (request.traffic, request.method, request.path) == (Traffic.TRAIN, "POST", "/x")
    with pytest.raises(ValueError, match="NaN and Infinity"):
        ApiCall(traffic=Traffic.TRAIN, method="POST", path="/x", body={"x": float("nan")}).encode()
    assert ApiCall(traffic=Traffic.TRAIN, method="GET", path="/x").encode().content is None


def test_call_decodes_json_reply_and_errors(
    service: FakeService, make_runtime: RuntimeFactory
) -> None:
    runtime = make_runtime()
    assert call(runtime, "GET", "/api/v1/healthz") == {
        "method": "GET",
        "path": "/api/v1/healthz",
    }
    service.push("/api/v1/archive", Reply(302, None, {"Location": "https://x/y"}))
    raw = call(runtime, "GET", "/api/v1/archive", result=HttpReply)
    assert raw.status_code == 302 and raw.headers["Location"] == "https://x/y"
    service.push("/api/v1/archive", Reply(302, None, {"Location": "https://x/y"}))
    with pytest.raises(APIStatusError) as info:
        call(runtime, "GET", "/api/v1/archive")
    assert info.value.status_code == 302
    with pytest.raises(ValueError, match="NaN"):
        call(runtime, "POST", "/api/v1/nan", body={"x": float("nan")})
    assert service.seen("/api/v1/nan") == []
    with pytest.raises(TypeError, match="request body"):
        call(runtime, "POST", "/api/v1/x", body=object())


def test_submit_policy_retries_past_the_transport_layer(service: FakeService) -> None:
    fake = FakeTime()
    config = ClientConfig(api_key="k", base_url=service.url, telemetry=False, max_retries=1)
    options = RuntimeOptions(heartbeat=False, clock=fake.clock, sleep=fake.sleep)
    with open_session(config, options=options) as runtime:
        service.push("/api/v1/forward", *[Reply(503)] * 4)
        result = call(runtime, "POST", "/api/v1/forward", body={}, retry=SUBMIT)
        assert "request_id" in result
        # transport: 2 attempts each (0.5 s pause); the 5-minute layer pauses 1 s, then ok.
        assert len(service.seen("/api/v1/forward")) == 5
        assert 1.0 in fake.sleeps
        keys = [r.headers["X-Idempotency-Key"] for r in service.seen("/api/v1/forward")]
        assert keys[0] == keys[1] and keys[1] != keys[2]  # one key per transport round
        service.push("/api/v1/forward", *[Reply(500)] * 1000)
        with pytest.raises(InternalServerError):
            call(runtime, "POST", "/api/v1/forward", body={}, retry=SUBMIT)
        assert fake.now >= 300.0


def test_submit_pauses_in_the_pool_queue_with_the_same_policy(service: FakeService) -> None:
    fake = FakeTime()
    config = ClientConfig(api_key="k", base_url=service.url, telemetry=False, max_retries=1)
    options = RuntimeOptions(heartbeat=False, clock=fake.clock, sleep=fake.sleep)
    with open_session(config, options=options) as runtime:
        service.push("/api/v1/forward", *[Reply(503)] * 4)
        submitted = runtime.submit(
            ApiCall(
                traffic=Traffic.TRAIN,
                method="POST",
                path="/api/v1/forward",
                body={"n": 1},
                retry=SUBMIT,
                poll_as="Forward",
            )
        )
        assert flatten(submitted).result(timeout=10) == {"echo": {"n": 1}}
        assert len(service.seen("/api/v1/forward")) == 5
        transport, deadline = fake.sleeps[0::2], fake.sleeps[1::2]
        assert deadline == [1.0, 2.0] and all(0.375 <= s <= 0.5 for s in transport)
        polls = service.seen("/api/v1/retrieve_future")
        assert polls[0].headers["X-Tinker-Request-Type"] == "Forward"


def test_request_models_go_through_wire_and_results_are_structured(
    service: FakeService, make_runtime: RuntimeFactory
) -> None:
    runtime = make_runtime()
    request = types.CreateSamplingSessionRequest(
        session_id="S", sampling_session_seq_id=2, base_model=None, model_path="tinker://r/w/s"
    )
    future = call(
        runtime,
        "POST",
        "/api/v1/create_sampling_session",
        traffic=Traffic.SESSION,
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
    service.push("/api/v1/bad", Reply(200, {"model_id": "m"}))
    with pytest.raises(APIResponseValidationError, match="UntypedAPIFuture"):
        call(runtime, "POST", "/api/v1/bad", result=types.UntypedAPIFuture)

    sample = {"sequences": [{"tokens": [5, 6], "logprobs": [-0.5, -0.25], "stop_reason": "stop"}]}
    service.future("/api/v1/good", lambda _body: sample)
    service.future("/api/v1/broken", lambda _body: {"sequences": "nope"})

    def polled(path: str) -> Any:
        submit = ApiCall(
            traffic=Traffic.SAMPLE,
            method="POST",
            path=path,
            body={},
            result=types.SampleResponse,
            poll_as="Sample",
        )
        return flatten(runtime.submit(submit))

    result = polled("/api/v1/good").result(timeout=10)
    assert isinstance(result, types.SampleResponse)
    assert result.sequences[0].tokens == [5, 6]
    error = polled("/api/v1/broken").exception(timeout=10)
    assert isinstance(error, APIResponseValidationError)  # typed like a direct answer's
    assert str(error).startswith("The result of Sample request req-")
    assert f"from {service.url} does not match SampleResponse: " in str(error)
    assert call(runtime, "POST", "/api/v1/good", body={}, poll_as="Sample") == sample


def test_a_submit_answer_without_a_request_id_fails_the_call(
    service: FakeService, make_runtime: RuntimeFactory
) -> None:
    runtime = make_runtime()
    service.push("/api/v1/odd", Reply(200, {"model_id": "m"}))
    odd = ApiCall(traffic=Traffic.TRAIN, method="POST", path="/api/v1/odd", poll_as="Forward")
    error = runtime.submit(odd).exception(timeout=10)
    assert isinstance(error, ValueError)
    assert str(error) == "/api/v1/odd answered without a request_id: {'model_id': 'm'}"
