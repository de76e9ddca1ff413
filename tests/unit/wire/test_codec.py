"""WireCodec: the same request models encoded the 0.5.1 way and the 0.38 way."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tinker import types
from tinker._wire import compression, proto
from tinker._wire.codec import LEGACY_CODEC, PROTOBUF, WireCodec

CURRENT = WireCodec(era="0.38")
COMPRESSED = WireCodec(era="0.38", compress_forward_backward=True)


def _datum() -> types.Datum:
    tokens = [72, 101, 108, 108, 111]
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens),
        loss_fn_inputs={
            "target_tokens": types.TensorData(data=[*tokens[1:], 0], dtype="int64", shape=[5]),
            "weights": types.TensorData(data=[1.0, 1.0, 0.5, 0.0, 1.0], dtype="float32", shape=[5]),
        },
    )


def _batch(config: dict[str, float] | None = None) -> types.ForwardBackwardInput:
    return types.ForwardBackwardInput(
        data=[_datum()], loss_fn="cross_entropy", loss_fn_config=config
    )


def test_legacy_sends_forward_and_forward_backward_as_json_to_their_own_paths() -> None:
    forward = types.ForwardRequest(forward_input=_batch(), model_id="m", seq_id=3)
    encoded = LEGACY_CODEC.encode("/api/v1/forward", forward)
    assert encoded.path == "/api/v1/forward"
    assert encoded.headers == {"Content-Type": "application/json"}
    body = json.loads(encoded.content)
    assert body["model_id"] == "m" and body["seq_id"] == 3
    assert body["forward_input"]["loss_fn_config"] is None  # set fields only, nulls kept


def test_current_sends_forward_backward_as_protobuf_with_every_value() -> None:
    request = types.ForwardBackwardRequest(
        forward_backward_input=_batch({"clip": 0.2}), model_id="s:train:0", seq_id=7
    )
    encoded = CURRENT.encode("/api/v1/forward_backward", request)
    assert encoded.path == "/api/v1/forward_backward"
    assert encoded.headers == {"Content-Type": PROTOBUF}
    call = proto.decode_forward_backward_request(encoded.content)
    assert (call.model_id, call.seq_id, call.loss_fn, call.forward_only) == (
        "s:train:0",
        7,
        "cross_entropy",
        False,
    )
    assert dict(call.loss_fn_config or {}) == {"clip": 0.2}
    (datum,) = call.data
    assert datum.model_input.to_ints() == [72, 101, 108, 108, 111]
    weights = datum.loss_fn_inputs["weights"]
    assert weights.dtype == "float32"
    np.testing.assert_array_equal(
        np.asarray(weights.data, dtype=np.float32), [1.0, 1.0, 0.5, 0.0, 1.0]
    )
    targets = datum.loss_fn_inputs["target_tokens"]
    assert targets.dtype == "int64" and list(targets.data) == [101, 108, 108, 111, 0]


def test_current_sends_forward_to_the_forward_backward_endpoint_as_forward_only() -> None:
    request = types.ForwardRequest(forward_input=_batch(), model_id="s:train:0", seq_id=2)
    encoded = CURRENT.encode("/api/v1/forward", request)
    assert encoded.path == "/api/v1/forward_backward"
    assert proto.decode_forward_backward_request(encoded.content).forward_only is True


def test_compressed_bodies_are_one_zstd_frame_of_the_same_message() -> None:
    request = types.ForwardBackwardRequest(
        forward_backward_input=_batch(), model_id="s:train:0", seq_id=1
    )
    plain = CURRENT.encode("/api/v1/forward_backward", request)
    packed = COMPRESSED.encode("/api/v1/forward_backward", request)
    assert packed.headers == {"Content-Type": PROTOBUF, "Content-Encoding": "zstd"}
    assert compression.decompress(packed.content, max_output_size=1 << 20) == plain.content


def test_current_json_sends_defaults_and_leaves_nulls_out() -> None:
    request = types.CreateModelRequest(
        session_id="s", model_seq_id=0, base_model="b", lora_config=types.LoraConfig(rank=8)
    )
    body = json.loads(CURRENT.encode("/api/v1/create_model", request).content)
    assert body["type"] == "create_model"
    assert body["lora_config"] == {
        "rank": 8,
        "train_unembed": True,
        "train_mlp": True,
        "train_attn": True,
    }
    assert "user_metadata" not in body
    legacy = json.loads(LEGACY_CODEC.encode("/api/v1/create_model", request).content)
    assert "type" not in legacy and legacy["lora_config"] == {"rank": 8}


def test_a_forward_backward_without_seq_id_is_refused_before_sending() -> None:
    request = types.ForwardBackwardRequest(forward_backward_input=_batch(), model_id="m")
    with pytest.raises(ValueError, match="needs its seq_id"):
        CURRENT.encode("/api/v1/forward_backward", request)


def test_only_protobuf_results_are_asked_for_with_accept() -> None:
    assert CURRENT.result_headers("ForwardBackwardOutput") == {"Accept": PROTOBUF}
    assert CURRENT.result_headers("SampleResponse") == {"Accept": PROTOBUF}
    assert CURRENT.result_headers("OptimStepResponse") == {}
    assert LEGACY_CODEC.result_headers("SampleResponse") == {}


def test_poll_bodies_of_each_era() -> None:
    assert LEGACY_CODEC.poll_body("r", allow_metadata_only=True) == {"request_id": "r"}
    assert CURRENT.poll_body("r", allow_metadata_only=False) == {
        "request_id": "r",
        "allow_metadata_only": False,
    }


def test_protobuf_results_decode_into_the_expected_type() -> None:
    response = types.SampleResponse(
        sequences=[
            types.SampledSequence(stop_reason="length", tokens=[1, 2], logprobs=[-0.5, -1.0])
        ]
    )
    decoded = CURRENT.decode_result(
        proto.encode_sample_response(response), result=types.SampleResponse
    )
    assert isinstance(decoded, types.SampleResponse)
    assert list(decoded.sequences[0].tokens) == [1, 2]
    assert list(decoded.sequences[0].logprobs or []) == [-0.5, -1.0]
    with pytest.raises(ValueError, match="where a OptimStepResponse was expected"):
        CURRENT.decode_result(b"\x08\x01", result=types.OptimStepResponse)


def test_a_body_that_is_not_a_model_or_json_data_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="request body must be a dict or a request model"):
        CURRENT.encode("/api/v1/x", "text")
