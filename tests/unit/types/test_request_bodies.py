"""Exact JSON bodies of every request, built the way the official SDK builds them."""

from __future__ import annotations

import datetime as dt

import pytest

from tinker import _wire
from tinker import types as T

UTC = dt.timezone.utc


def body(obj: object) -> bytes:
    return _wire.dumps(obj)


def test_model_input_from_ints() -> None:
    assert _wire.unstructure(T.ModelInput.from_ints([1, 2, 3])) == {
        "chunks": [{"tokens": [1, 2, 3]}]
    }
    assert body(T.ModelInput.from_ints([1, 2, 3])) == b'{"chunks":[{"tokens":[1,2,3]}]}'


def test_chunk_type_is_sent_only_when_given() -> None:
    chunk = T.EncodedTextChunk(tokens=[7], type="encoded_text")
    assert body(chunk) == b'{"tokens":[7],"type":"encoded_text"}'


def test_image_chunk_base64_and_field_order() -> None:
    chunk = T.ImageChunk(data=b"abc", format="png", height=2, tokens=4, width=2)
    assert body(chunk) == b'{"data":"YWJj","format":"png","height":2,"tokens":4,"width":2}'


def test_image_asset_pointer_chunk() -> None:
    chunk = T.ImageAssetPointerChunk(
        format="jpeg", height=8, location="s3://bucket/a.jpg", tokens=16, width=8
    )
    assert body(chunk) == (
        b'{"format":"jpeg","height":8,"location":"s3://bucket/a.jpg","tokens":16,"width":8}'
    )


def test_adam_params_only_set_fields() -> None:
    assert body(T.AdamParams(learning_rate=1e-4)) == b'{"learning_rate":0.0001}'
    full = T.AdamParams(learning_rate=0.0002, beta1=0.8, beta2=0.99, eps=1e-08)
    assert body(full) == b'{"learning_rate":0.0002,"beta1":0.8,"beta2":0.99,"eps":1e-08}'
    assert body(T.AdamParams()) == b"{}"
    decayed = T.AdamParams(learning_rate=1e-3, weight_decay=0.01, grad_clip_norm=1.0)
    assert body(decayed) == b'{"learning_rate":0.001,"weight_decay":0.01,"grad_clip_norm":1.0}'


def test_create_model_body() -> None:
    request = T.CreateModelRequest(
        session_id="S",
        model_seq_id=0,
        base_model="Qwen/Qwen3-8B",
        user_metadata=None,
        lora_config=T.LoraConfig(
            rank=32, seed=None, train_unembed=True, train_mlp=True, train_attn=True
        ),
    )
    assert body(request) == (
        b'{"session_id":"S","model_seq_id":0,"base_model":"Qwen/Qwen3-8B","user_metadata":null,'
        b'"lora_config":{"rank":32,"seed":null,"train_unembed":true,"train_mlp":true,'
        b'"train_attn":true}}'
    )


def test_create_session_body() -> None:
    request = T.CreateSessionRequest(
        tags=["exp-a", "exp-b"], user_metadata={"who": "me"}, sdk_version="0.5.1"
    )
    assert body(request) == (
        b'{"tags":["exp-a","exp-b"],"user_metadata":{"who":"me"},"sdk_version":"0.5.1"}'
    )


def test_heartbeat_get_info_retrieve_unload_bodies() -> None:
    assert body(T.SessionHeartbeatRequest(session_id="S")) == b'{"session_id":"S"}'
    assert body(T.GetInfoRequest(model_id="S:train:0")) == b'{"model_id":"S:train:0"}'
    assert body(T.FutureRetrieveRequest(request_id="R1")) == b'{"request_id":"R1"}'
    assert body(T.UnloadModelRequest(model_id="m")) == b'{"model_id":"m"}'
    assert body(T.WeightsInfoRequest(tinker_path="tinker://r/weights/a")) == (
        b'{"tinker_path":"tinker://r/weights/a"}'
    )


def test_create_sampling_session_sends_the_null_field() -> None:
    request = T.CreateSamplingSessionRequest(
        session_id="S",
        sampling_session_seq_id=2,
        base_model=None,
        model_path="tinker://S:train:0/sampler_weights/s1",
    )
    assert body(request) == (
        b'{"session_id":"S","sampling_session_seq_id":2,"base_model":null,'
        b'"model_path":"tinker://S:train:0/sampler_weights/s1"}'
    )


def test_asample_body() -> None:
    request = T.SampleRequest(
        num_samples=2,
        prompt=T.ModelInput.from_ints([1, 2, 3]),
        sampling_params=T.SamplingParams(max_tokens=4, stop=[13], temperature=0.7),
        sampling_session_id="S:sample:0",
        seq_id=0,
        prompt_logprobs=True,
        topk_prompt_logprobs=2,
    )
    assert body(request) == (
        b'{"num_samples":2,"prompt":{"chunks":[{"tokens":[1,2,3]}]},'
        b'"sampling_params":{"max_tokens":4,"stop":[13],"temperature":0.7},'
        b'"sampling_session_id":"S:sample:0","seq_id":0,"prompt_logprobs":true,'
        b'"topk_prompt_logprobs":2}'
    )


def test_compute_logprobs_body() -> None:
    request = T.SampleRequest(
        num_samples=1,
        prompt=T.ModelInput.from_ints([5]),
        sampling_params=T.SamplingParams(max_tokens=1),
        sampling_session_id="S:sample:1",
        seq_id=3,
        prompt_logprobs=True,
        topk_prompt_logprobs=0,
    )
    assert _wire.unstructure(request)["sampling_params"] == {"max_tokens": 1}


@pytest.mark.parametrize("stop", ["\n", ["\n"], [13]])
def test_stop_forms(stop: object) -> None:
    params = T.SamplingParams(stop=stop)  # type: ignore[arg-type]
    assert _wire.unstructure(params) == {"stop": stop}


def test_forward_backward_body() -> None:
    datum = T.Datum(
        model_input=T.ModelInput.from_ints([1, 2, 3]),
        loss_fn_inputs={"target_tokens": [2, 3, 4], "weights": [0.0, 1.0, 0.5]},
    )
    request = T.ForwardBackwardRequest(
        forward_backward_input=T.ForwardBackwardInput(
            data=[datum], loss_fn="cross_entropy", loss_fn_config=None
        ),
        model_id="S:train:0",
        seq_id=1,
    )
    assert body(request) == (
        b'{"forward_backward_input":{"data":[{"loss_fn_inputs":{'
        b'"target_tokens":{"data":[2,3,4],"dtype":"int64","shape":[3]},'
        b'"weights":{"data":[0.0,1.0,0.5],"dtype":"float32","shape":[3]}},'
        b'"model_input":{"chunks":[{"tokens":[1,2,3]}]}}],'
        b'"loss_fn":"cross_entropy","loss_fn_config":null},"model_id":"S:train:0","seq_id":1}'
    )


def test_forward_body_float32_values_as_doubles() -> None:
    np = pytest.importorskip("numpy")
    datum = T.Datum(
        model_input=T.ModelInput.from_ints([1]),
        loss_fn_inputs={
            "target_tokens": np.array([2], dtype=np.int32),
            "weights": np.array([0.1], dtype=np.float32),
        },
    )
    request = T.ForwardRequest(
        forward_input=T.ForwardBackwardInput(data=[datum], loss_fn="cross_entropy"),
        model_id="m",
        seq_id=4,
    )
    assert body(request) == (
        b'{"forward_input":{"data":[{"loss_fn_inputs":{'
        b'"target_tokens":{"data":[2],"dtype":"int64","shape":[1]},'
        b'"weights":{"data":[0.10000000149011612],"dtype":"float32","shape":[1]}},'
        b'"model_input":{"chunks":[{"tokens":[1]}]}}],"loss_fn":"cross_entropy"},'
        b'"model_id":"m","seq_id":4}'
    )


def test_optim_step_body() -> None:
    request = T.OptimStepRequest(
        adam_params=T.AdamParams(learning_rate=1e-4), model_id="S:train:0", seq_id=2
    )
    assert body(request) == (
        b'{"adam_params":{"learning_rate":0.0001},"model_id":"S:train:0","seq_id":2}'
    )


def test_save_and_load_weights_bodies() -> None:
    save = T.SaveWeightsRequest(model_id="m", path="ckpt1", seq_id=3)
    assert body(save) == b'{"model_id":"m","path":"ckpt1","seq_id":3}'
    expiring = T.SaveWeightsRequest(model_id="m", path="ckpt1", seq_id=3, ttl_seconds=3600)
    assert body(expiring) == b'{"model_id":"m","path":"ckpt1","seq_id":3,"ttl_seconds":3600}'
    load = T.LoadWeightsRequest(
        model_id="m", path="tinker://m/weights/ckpt1", optimizer=False, seq_id=5
    )
    assert body(load) == (
        b'{"model_id":"m","path":"tinker://m/weights/ckpt1","optimizer":false,"seq_id":5}'
    )


def test_save_weights_for_sampler_forms() -> None:
    named = T.SaveWeightsForSamplerRequest(model_id="m", path="s1", seq_id=4)
    assert body(named) == b'{"model_id":"m","path":"s1","seq_id":4}'
    ephemeral = T.SaveWeightsForSamplerRequest(model_id="m", sampling_session_seq_id=0, seq_id=4)
    assert body(ephemeral) == b'{"model_id":"m","sampling_session_seq_id":0,"seq_id":4}'


def test_telemetry_body_always_names_the_event() -> None:
    start = T.SessionStartEvent(
        event_id="e1",
        event_session_index=0,
        severity="INFO",
        timestamp=dt.datetime(2025, 11, 25, 6, 15, 14, 82201, tzinfo=UTC),
    )
    generic = T.GenericEvent(
        event_id="e2",
        event_name="APIFuture.result_async.api_status_error",
        event_session_index=1,
        severity="WARNING",
        timestamp=dt.datetime(2025, 11, 25, 6, 15, 14, 246618, tzinfo=UTC),
        event_data={"request_id": "R1", "status_code": 500},
    )
    request = T.TelemetrySendRequest(
        events=[start, generic], platform="Linux", sdk_version="0.5.1", session_id="S"
    )
    assert body(request) == (
        b'{"events":[{"event":"SESSION_START","event_id":"e1","event_session_index":0,'
        b'"severity":"INFO","timestamp":"2025-11-25T06:15:14.082201Z"},'
        b'{"event":"GENERIC_EVENT","event_id":"e2",'
        b'"event_name":"APIFuture.result_async.api_status_error","event_session_index":1,'
        b'"severity":"WARNING","timestamp":"2025-11-25T06:15:14.246618Z",'
        b'"event_data":{"request_id":"R1","status_code":500}}],'
        b'"platform":"Linux","sdk_version":"0.5.1","session_id":"S"}'
    )


def test_dumps_is_compact_utf8_without_ascii_escapes() -> None:
    request = T.CreateSessionRequest(tags=["é✓"], user_metadata={}, sdk_version="1")
    assert body(request) == '{"tags":["é✓"],"user_metadata":{},"sdk_version":"1"}'.encode()


def test_dumps_refuses_nan_naming_the_field() -> None:
    datum = T.Datum(
        model_input=T.ModelInput.from_ints([1, 2]),
        loss_fn_inputs={"target_tokens": [1, 2], "weights": [1.0, float("nan")]},
    )
    with pytest.raises(ValueError, match=r"weights\.data\[1\] = nan: NaN and Infinity"):
        _wire.dumps(datum)
    with pytest.raises(ValueError, match=r"\$\.temperature = inf"):
        _wire.dumps(T.SamplingParams(temperature=float("inf")))


def test_dumps_numpy_values_inside_free_form_dicts() -> None:
    np = pytest.importorskip("numpy")
    data = {"a": np.float32(0.5), "b": np.arange(3), "c": np.int64(7)}
    request = T.CreateSessionRequest(tags=[], user_metadata=data, sdk_version="1")
    assert body(request) == (
        b'{"tags":[],"user_metadata":{"a":0.5,"b":[0,1,2],"c":7},"sdk_version":"1"}'
    )


def test_dumps_of_plain_data_holding_models() -> None:
    body = {"tinker_path": "tinker://r/weights/a", "extra": [T.AdamParams(eps=1e-9)]}
    assert _wire.dumps(body) == b'{"tinker_path":"tinker://r/weights/a","extra":[{"eps":1e-09}]}'
    with pytest.raises(ValueError, match=r"\$\.extra\[0\]\.eps = nan"):
        _wire.dumps({"extra": [T.AdamParams(eps=float("nan"))]})
