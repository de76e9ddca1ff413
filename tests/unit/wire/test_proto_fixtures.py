"""The codec against bytes written by the official 0.38 SDK's own protobuf classes.

Each fixture decodes to the values its index entry describes; canonical fixtures (written with
deterministic serialization) are also what our encoder writes for those values, byte for
byte, so the official parser reads our bytes as its own. Response fixtures also carry what the
official SDK made of them (`sdk`), and request fixtures the SDK call that produced them
(`sdk_input`): the mapping layer must agree with both.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from proto_support import INDEX, assert_same, fixture_bytes, from_json

from tinker import types as T
from tinker._wire import proto
from tinker._wire.proto import messages as m

CANONICAL = [e for e in INDEX if e["canonical"]]


def message_class(entry: dict[str, Any]) -> type[Any]:
    return getattr(m, entry["message"])


@pytest.mark.parametrize("entry", INDEX, ids=lambda e: e["name"])
def test_fixture_decodes_to_its_values(entry: dict[str, Any]) -> None:
    cls = message_class(entry)
    decoded = proto.decode(fixture_bytes(entry["name"]), cls)
    assert_same(decoded, from_json(cls, entry["values"]))


@pytest.mark.parametrize("entry", CANONICAL, ids=lambda e: e["name"])
def test_encoding_the_values_gives_the_official_bytes(entry: dict[str, Any]) -> None:
    message = from_json(message_class(entry), entry["values"])
    assert proto.encode(message) == fixture_bytes(entry["name"])


def test_the_index_covers_the_edge_cases() -> None:
    names = {e["name"] for e in INDEX}
    assert {
        "fb_request_unknown_fields",
        "fb_request_every_field",
        "fb_output_records",
        "sample_response_full",
        "sdk_request_sparse",
    } <= names
    assert len(fixture_bytes("fb_request_wire_example")) == 183  # the documented example


# --- mapping layer against the official SDK --------------------------------------------------


def tensor_values(td: T.TensorData) -> dict[str, Any]:
    return {"dtype": td.dtype, "shape": td.shape, "data": td.to_numpy().reshape(-1).tolist()}


def same_number_lists(actual: list[Any], expected: list[Any]) -> bool:
    return np.array_equal(np.array(actual, float), np.array(expected, float), equal_nan=True)


FB_OUTPUTS = [e for e in INDEX if e["message"] == "ForwardBackwardOutput"]


@pytest.mark.parametrize("entry", FB_OUTPUTS, ids=lambda e: e["name"])
def test_forward_backward_output_maps_like_the_official_sdk(entry: dict[str, Any]) -> None:
    output = proto.decode_forward_backward_output(fixture_bytes(entry["name"]))
    expected = entry["sdk"]
    assert output.loss_fn_output_type == expected["loss_fn_output_type"]
    assert output.metrics == expected["metrics"]
    assert len(output.loss_fn_outputs) == len(expected["loss_fn_outputs"])
    for got, want in zip(output.loss_fn_outputs, expected["loss_fn_outputs"], strict=True):
        assert sorted(got) == sorted(want)
        for name, tensor in got.items():
            values = tensor_values(tensor)
            assert values["dtype"] == want[name]["dtype"]
            assert values["shape"] == want[name]["shape"]
            assert same_number_lists(values["data"], want[name]["data"])


SAMPLES = [e for e in INDEX if e["message"] == "SampleResponse"]


@pytest.mark.parametrize("entry", SAMPLES, ids=lambda e: e["name"])
def test_sample_response_maps_like_the_official_sdk(entry: dict[str, Any]) -> None:
    response = proto.decode_sample_response(fixture_bytes(entry["name"]))
    expected = entry["sdk"]
    assert response.prompt_logprobs == expected["prompt_logprobs"]
    topk = expected["topk_prompt_logprobs"]
    want_topk = (
        None if topk is None else [None if r is None else [tuple(c) for c in r] for r in topk]
    )
    assert response.topk_prompt_logprobs == want_topk
    assert [s.stop_reason for s in response.sequences] == [
        s["stop_reason"] for s in expected["sequences"]
    ]
    assert [s.tokens for s in response.sequences] == [s["tokens"] for s in expected["sequences"]]
    assert [s.logprobs for s in response.sequences] == [
        s["logprobs"] for s in expected["sequences"]
    ]


def sdk_datum(spec: dict[str, Any]) -> T.Datum:
    chunks: list[Any] = []
    for chunk in spec["chunks"]:
        if chunk["type"] == "encoded_text":
            chunks.append(T.EncodedTextChunk(tokens=chunk["tokens"]))
        else:
            chunks.append(
                T.ImageChunk(
                    data=bytes.fromhex(chunk["hex"]),
                    format=chunk["format"],
                    expected_tokens=chunk.get("expected_tokens"),
                    height=1,
                    width=1,
                    tokens=chunk.get("expected_tokens", 0),
                )
            )
    inputs: dict[str, Any] = {}
    for key, tensor in spec["loss_fn_inputs"].items():
        dtype = {"int64": np.int64, "float32": np.float32}[tensor["dtype"]]
        array = np.array(tensor["data"], dtype).reshape(tensor["shape"])
        # The official SDK sent a 2-D torch tensor (which Datum makes sparse) where it wrote CSR.
        sparse = "sparse" in tensor
        inputs[key] = T.TensorData.from_dense_numpy(array, tensor["dtype"]) if sparse else array
    return T.Datum(model_input=T.ModelInput(chunks=chunks), loss_fn_inputs=inputs)


def sdk_call(spec: dict[str, Any]) -> proto.ForwardBackwardCall:
    return proto.ForwardBackwardCall(
        model_id=spec["model_id"],
        seq_id=spec["seq_id"],
        data=[sdk_datum(d) for d in spec["data"]],
        loss_fn=spec["loss_fn"],
        loss_fn_config=spec.get("loss_fn_config"),
        forward_only=spec.get("forward_only", False),
    )


REQUESTS = [e for e in INDEX if "sdk_input" in e]


def chunk_values(chunk: Any) -> tuple[Any, ...]:
    if isinstance(chunk, T.EncodedTextChunk):
        return ("text", list(chunk.tokens))
    return ("image", chunk.data, chunk.format, chunk.expected_tokens)


@pytest.mark.parametrize("entry", REQUESTS, ids=lambda e: e["name"])
def test_request_body_is_the_official_sdks(entry: dict[str, Any]) -> None:
    body = proto.encode_forward_backward_request(sdk_call(entry["sdk_input"]))
    assert body == fixture_bytes(entry["name"])


@pytest.mark.parametrize("entry", REQUESTS, ids=lambda e: e["name"])
def test_official_request_body_decodes_to_the_call(entry: dict[str, Any]) -> None:
    spec = entry["sdk_input"]
    call = proto.decode_forward_backward_request(fixture_bytes(entry["name"]))
    expected = sdk_call(spec)
    assert (call.model_id, call.seq_id, call.loss_fn, call.forward_only) == (
        expected.model_id,
        expected.seq_id,
        expected.loss_fn,
        expected.forward_only,
    )
    config = spec.get("loss_fn_config")
    assert call.loss_fn_config == (
        None
        if config is None
        else {k: v if isinstance(v, str) else float(v) for k, v in config.items()}
    )
    for got, want in zip(call.data, expected.data, strict=True):
        assert [chunk_values(c) for c in got.model_input.chunks] == [
            chunk_values(c) for c in want.model_input.chunks
        ]
        assert sorted(got.loss_fn_inputs) == sorted(want.loss_fn_inputs)
        for key, tensor in got.loss_fn_inputs.items():
            assert tensor_values(tensor) == tensor_values(want.loss_fn_inputs[key])


# --- results the local server writes, as the official SDK read them --------------------------

SERVER = [e for e in INDEX if "server_input" in e]


def server_value(entry: dict[str, Any]) -> Any:
    spec = entry["server_input"]
    if entry["message"] == "ForwardBackwardOutput":
        return T.ForwardBackwardOutput(
            loss_fn_output_type=spec["loss_fn_output_type"],
            metrics=spec["metrics"],
            loss_fn_outputs=[
                {k: T.TensorData(**t) for k, t in d.items()} for d in spec["loss_fn_outputs"]
            ],
        )
    return T.SampleResponse(
        sequences=[T.SampledSequence(**s) for s in spec["sequences"]],
        prompt_logprobs=spec["prompt_logprobs"],
        topk_prompt_logprobs=[
            None if row is None else [tuple(cell) for cell in row]
            for row in spec["topk_prompt_logprobs"]
        ],
    )


@pytest.mark.parametrize("entry", SERVER, ids=lambda e: e["name"])
def test_result_bodies_are_what_the_official_sdk_read(entry: dict[str, Any]) -> None:
    value = server_value(entry)
    if entry["message"] == "ForwardBackwardOutput":
        body = proto.encode_forward_backward_output(value)
        assert entry["sdk"]["loss_fn_outputs"] == entry["server_input"]["loss_fn_outputs"]
        assert entry["sdk"]["metrics"] == entry["server_input"]["metrics"]
    else:
        body = proto.encode_sample_response(value)
        assert entry["sdk"]["prompt_logprobs"] == entry["server_input"]["prompt_logprobs"]
        assert entry["sdk"]["topk_prompt_logprobs"] == entry["server_input"]["topk_prompt_logprobs"]
        assert [s["tokens"] for s in entry["sdk"]["sequences"]] == [
            s["tokens"] for s in entry["server_input"]["sequences"]
        ]
    assert entry["canonical"]
    assert body == fixture_bytes(entry["name"])
