"""The mapping between tinker.types values and protobuf bodies (dense and sparse forms)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinker import types as T
from tinker._wire import proto
from tinker._wire.proto import messages as m

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def datum(tokens: list[int], **inputs: Any) -> T.Datum:
    return T.Datum(model_input=T.ModelInput.from_ints(tokens), loss_fn_inputs=inputs)


def call(data: list[T.Datum], config: Any = None, **overrides: Any) -> proto.ForwardBackwardCall:
    values: dict[str, Any] = {"model_id": "m", "seq_id": 1, "loss_fn": "cross_entropy"}
    values.update(overrides)
    return proto.ForwardBackwardCall(data=data, loss_fn_config=config, **values)


def request_message(body: bytes) -> m.ForwardBackwardRequest:
    return proto.decode(body, m.ForwardBackwardRequest)


# --- loss_fn_config --------------------------------------------------------------------------


def test_config_numbers_go_to_both_maps_and_strings_only_to_v2() -> None:
    body = proto.encode_forward_backward_request(
        call([], {"clip": 0.2, "steps": 3, "on": True, "mode": "x"})
    )
    message = request_message(body)
    assert message.loss_fn_config == {"clip": 0.2, "steps": 3.0, "on": 1.0}
    assert message.loss_fn_config_v2 == {"clip": 0.2, "steps": 3.0, "on": 1.0, "mode": "x"}


@pytest.mark.parametrize("value", [None, [1.0], {"a": 1}])
def test_a_config_value_that_is_neither_number_nor_string_is_refused(value: Any) -> None:
    with pytest.raises(ValueError, match=r"loss_fn_config\['bad'\]: expected a number or a string"):
        proto.encode_forward_backward_request(call([], {"bad": value}))


def test_decoding_prefers_v2_and_keeps_legacy_only_entries() -> None:
    message = m.ForwardBackwardRequest(
        loss_fn_config={"clip": 1.0, "old": 5.0},
        loss_fn_config_v2={"clip": 2.0, "mode": "y", "unset": None},
    )
    decoded = proto.decode_forward_backward_request(proto.encode(message))
    assert decoded.loss_fn_config == {"clip": 2.0, "old": 5.0, "mode": "y"}


def test_no_config_decodes_as_none_and_forward_only_survives() -> None:
    body = proto.encode_forward_backward_request(call([], forward_only=True, seq_id=9))
    decoded = proto.decode_forward_backward_request(body)
    assert (decoded.loss_fn_config, decoded.forward_only, decoded.seq_id) == (None, True, 9)


# --- datums ----------------------------------------------------------------------------------


def test_sparse_tensors_travel_as_csr_and_dense_ones_dense() -> None:
    targets = np.zeros((4, 5), np.int64)
    targets[1, 2], targets[3, 0] = 7, 9
    weights = (targets != 0).astype(np.float32)
    sparse_targets = T.TensorData.from_dense_numpy(targets, "int64")
    sparse_weights = T.TensorData.from_dense_numpy(weights, "float32")
    assert sparse_targets.is_sparse and sparse_weights.is_sparse
    body = proto.encode_forward_backward_request(
        call([datum([1, 2, 3, 4], target_tokens=sparse_targets, weights=sparse_weights,
                    advantages=weights)])
    )  # fmt: skip
    inputs = request_message(body).data[0].loss_fn_inputs
    sparse = inputs["target_tokens"].sparse_csr
    assert sparse is not None and inputs["weights"].sparse_csr is not None
    assert sparse.values.tolist() == [7, 9]
    assert sparse.crow_indices.tolist() == [0, 0, 1, 1, 2]
    assert sparse.col_indices.tolist() == [2, 0]
    assert inputs["advantages"].sparse_csr is None  # a dense array stays dense
    decoded = proto.decode_forward_backward_request(body).data[0].loss_fn_inputs
    assert decoded["target_tokens"].is_sparse and decoded["weights"].is_sparse
    assert not decoded["advantages"].is_sparse
    assert np.array_equal(decoded["target_tokens"].to_numpy(), targets)
    assert np.array_equal(decoded["weights"].to_numpy(), weights)


def test_two_dimensional_torch_targets_are_sparse_only_when_smaller() -> None:
    torch = pytest.importorskip("torch")
    targets = torch.zeros((4, 5), dtype=torch.long)
    targets[1, 2] = 7
    made = T.Datum(
        model_input=T.ModelInput.from_ints([1, 2, 3, 4]),
        loss_fn_inputs={"target_tokens": targets, "advantages": targets.float()},
    )
    assert made.loss_fn_inputs["target_tokens"].is_sparse
    assert not made.loss_fn_inputs["advantages"].is_sparse  # only target_tokens and weights
    small = T.TensorData.from_torch_sparse(torch.tensor([[1, 0], [2, 3]]))
    assert not small.is_sparse  # (2 + 1) + 2 * 3 = 9 >= 4


def test_csr_is_not_used_when_it_is_not_smaller() -> None:
    targets = np.array([[1, 0], [2, 3]], np.int64)  # (2 + 1) + 2 * 3 = 9 >= 4
    body = proto.encode_forward_backward_request(call([datum([1, 2], target_tokens=targets)]))
    tensor = request_message(body).data[0].loss_fn_inputs["target_tokens"]
    assert tensor.sparse_csr is None
    assert tensor.shape == (2, 2) and tensor.dense is not None
    assert tensor.dense.tolist() == [1, 0, 2, 3]


def test_tensors_keep_their_dtype_and_shape() -> None:
    body = proto.encode_forward_backward_request(
        call([datum([5, 6, 7], target_tokens=[6, 7, 8], weights=[1.0, 0.5, 0.0])])
    )
    inputs = request_message(body).data[0].loss_fn_inputs
    assert (inputs["target_tokens"].dtype, inputs["target_tokens"].shape) == (m.DType.INT64, (3,))
    assert (inputs["weights"].dtype, inputs["weights"].shape) == (m.DType.FLOAT32, (3,))
    assert inputs["weights"].dense is not None
    assert inputs["weights"].dense.dtype == np.dtype("<f4")


def test_narrow_and_half_precision_inputs_are_widened_bit_exactly() -> None:
    bf16 = np.array([0x3F80, 0xC049, 0x0001, 0x7FC1], "<u2")
    message = m.ForwardBackwardRequest(
        data=[
            m.Datum(
                model_input=[m.EncodedTextChunk(tokens=np.array([1], "<i4"))],
                loss_fn_inputs={
                    "target_tokens": m.Tensor(
                        dtype=m.DType.INT32, shape=(2,), dense=np.array([-7, 2**31 - 1], "<i4")
                    ),
                    "weights": m.Tensor(dtype=m.DType.BFLOAT16, shape=(2, 2), dense=bf16),
                },
            )
        ]
    )
    inputs = proto.decode_forward_backward_request(proto.encode(message)).data[0].loss_fn_inputs
    assert inputs["target_tokens"].dtype == "int64"
    assert inputs["target_tokens"].data == [-7, 2**31 - 1]
    weights = inputs["weights"].to_numpy()
    assert weights.shape == (2, 2)
    assert weights.view(np.uint32).reshape(-1).tolist() == [v << 16 for v in bf16.tolist()]


def test_token_ids_beyond_int32_are_refused_naming_the_chunk() -> None:
    with pytest.raises(ValueError, match=r"data\[0\].model_input.chunks\[0\]: token id 2147483648"):
        proto.encode_forward_backward_request(call([datum([2**31], weights=[1.0])]))


def test_image_asset_pointers_have_no_protobuf_form() -> None:
    pointer = T.ImageAssetPointerChunk(format="png", height=1, location="s3://x", tokens=1, width=1)
    data = [T.Datum(model_input=T.ModelInput(chunks=[pointer]), loss_fn_inputs={})]
    with pytest.raises(ValueError, match=r"data\[0\].model_input.chunks\[0\]: ImageAssetPointer"):
        proto.encode_forward_backward_request(call(data))


def test_image_chunks_travel_with_their_expected_tokens() -> None:
    image = T.ImageChunk(
        data=b"\x89PNG", format="png", height=2, width=2, tokens=4, expected_tokens=4
    )
    data = [T.Datum(model_input=T.ModelInput(chunks=[image]), loss_fn_inputs={})]
    decoded = proto.decode_forward_backward_request(
        proto.encode_forward_backward_request(call(data))
    )
    (chunk,) = decoded.data[0].model_input.chunks
    assert isinstance(chunk, T.ImageChunk)
    assert (chunk.data, chunk.format, chunk.expected_tokens, chunk.length) == (
        b"\x89PNG",
        "png",
        4,
        4,
    )


def test_a_large_batch_round_trips_exactly() -> None:
    rng = np.random.default_rng(1)
    batch = [
        datum(
            rng.integers(0, 50_000, 300).tolist(),
            target_tokens=rng.integers(0, 50_000, 300),
            weights=rng.random(300).astype(np.float32),
        )
        for _ in range(16)
    ]
    decoded = proto.decode_forward_backward_request(
        proto.encode_forward_backward_request(call(batch))
    )
    for got, sent in zip(decoded.data, batch, strict=True):
        assert got.model_input.to_ints() == sent.model_input.to_ints()
        for key, tensor in sent.loss_fn_inputs.items():
            assert got.loss_fn_inputs[key].to_numpy().tobytes() == tensor.to_numpy().tobytes()


# --- forward_backward results ----------------------------------------------------------------

FLOAT32S = st.lists(st.floats(width=32, allow_nan=False), max_size=5)


@st.composite
def outputs(draw: st.DrawFn) -> T.ForwardBackwardOutput:
    per_datum = []
    for _ in range(draw(st.integers(0, 4))):
        logprobs = draw(FLOAT32S)
        ids = draw(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=4))
        per_datum.append(
            {
                "logprobs": T.TensorData(data=logprobs, dtype="float32", shape=[len(logprobs)]),
                "ids": T.TensorData(data=ids, dtype="int64", shape=[len(ids), 1]),
            }
        )
    metrics = draw(st.dictionaries(st.text(max_size=5), st.floats(allow_nan=False), max_size=3))
    return T.ForwardBackwardOutput(
        loss_fn_output_type="ArrayRecord", loss_fn_outputs=per_datum, metrics=metrics
    )


@SETTINGS
@given(outputs())
def test_forward_backward_outputs_round_trip(output: T.ForwardBackwardOutput) -> None:
    decoded = proto.decode_forward_backward_output(proto.encode_forward_backward_output(output))
    assert decoded.loss_fn_output_type == "ArrayRecord"
    assert decoded.metrics == output.metrics
    assert len(decoded.loss_fn_outputs) == len(output.loss_fn_outputs)
    for got, sent in zip(decoded.loss_fn_outputs, output.loss_fn_outputs, strict=True):
        for name, tensor in sent.items():
            assert got[name].dtype == tensor.dtype
            assert got[name].shape == tensor.shape
            assert got[name].to_numpy().tobytes() == tensor.to_numpy().tobytes()
            assert got[name].values.flags.writeable  # the caller may change its own copy
            rebuilt = T.TensorData.from_numpy(got[name].to_numpy())
            assert got[name].model_dump() == rebuilt.model_dump()
            assert got[name].model_fields_set == rebuilt.model_fields_set


def test_a_change_of_trailing_shape_starts_a_new_record() -> None:
    output = T.ForwardBackwardOutput(
        loss_fn_output_type="ArrayRecord",
        metrics={},
        loss_fn_outputs=[
            {"x": T.TensorData(data=[1.0, 2.0], dtype="float32", shape=[1, 2])},
            {"x": T.TensorData(data=[3.0, 4.0], dtype="float32", shape=[1, 2])},
            {"x": T.TensorData(data=[5.0, 6.0], dtype="float32", shape=[2, 1])},
        ],
    )
    message = proto.decode(proto.encode_forward_backward_output(output), m.ForwardBackwardOutput)
    assert [r.num_datums for r in message.loss_fn_outputs] == [2, 1]
    assert [r.fields["x"].trailing_shape for r in message.loss_fn_outputs] == [(2,), (1,)]


def test_outputs_with_different_fields_per_datum_are_refused() -> None:
    output = T.ForwardBackwardOutput(
        loss_fn_output_type="ArrayRecord",
        metrics={},
        loss_fn_outputs=[
            {"a": T.TensorData(data=[1.0], dtype="float32", shape=[1])},
            {"b": T.TensorData(data=[1.0], dtype="float32", shape=[1])},
        ],
    )
    with pytest.raises(ValueError, match=r"loss_fn_outputs\[1\]: fields \['b'\] differ"):
        proto.encode_forward_backward_output(output)


def test_zero_dimensional_outputs_are_refused() -> None:
    output = T.ForwardBackwardOutput(
        loss_fn_output_type="ArrayRecord",
        metrics={},
        loss_fn_outputs=[{"loss": T.TensorData(data=[1.0], dtype="float32", shape=[])}],
    )
    with pytest.raises(ValueError, match=r"loss_fn_outputs\[0\]\['loss'\]: a 0-d output"):
        proto.encode_forward_backward_output(output)


# --- sample results --------------------------------------------------------------------------

ROWS = st.lists(
    st.none()
    | st.lists(
        st.tuples(st.integers(1, 2**31 - 1), st.floats(width=32, allow_nan=False, max_value=0)),
        min_size=1,
        max_size=3,
    ),
    max_size=4,
)


@SETTINGS
@given(
    st.lists(
        st.builds(
            T.SampledSequence,
            stop_reason=st.sampled_from(["stop", "length"]),
            tokens=st.lists(st.integers(0, 2**31 - 1), max_size=4),
            logprobs=st.none() | st.lists(st.floats(width=32), min_size=1, max_size=4),
        ),
        max_size=3,
    ),
    st.none() | st.lists(st.none() | st.floats(width=32, allow_nan=False), min_size=1, max_size=4),
    st.none() | ROWS.filter(lambda rows: any(rows)),
)
def test_sample_responses_round_trip(
    sequences: list[T.SampledSequence],
    prompt: list[float | None] | None,
    topk: list[list[tuple[int, float]] | None] | None,
) -> None:
    response = T.SampleResponse(
        sequences=sequences, prompt_logprobs=prompt, topk_prompt_logprobs=topk
    )
    decoded = proto.decode_sample_response(proto.encode_sample_response(response))
    assert decoded.prompt_logprobs == prompt
    assert decoded.topk_prompt_logprobs == topk
    for got, sent in zip(decoded.sequences, sequences, strict=True):
        assert (got.stop_reason, got.tokens) == (sent.stop_reason, sent.tokens)
        assert np.array_equal(
            np.array(got.logprobs or [], np.float32),
            np.array(sent.logprobs or [], np.float32),
            equal_nan=True,
        )


def test_nan_prompt_logprobs_read_as_none() -> None:
    message = m.SampleResponse(prompt_logprobs=np.array([math.nan, -1.0, math.nan], "<f4"))
    assert proto.decode_sample_response(proto.encode(message)).prompt_logprobs == [None, -1.0, None]


def test_sampled_token_ids_beyond_int32_are_refused() -> None:
    # Sequences hold int32 token arrays (as in 0.38), so such an id never reaches the encoder.
    with pytest.raises(ValueError, match=r"SampledSequence.tokens: a token id does not fit"):
        T.SampledSequence(stop_reason="stop", tokens=[2**31])


def test_a_sample_response_with_every_0_38_field_round_trips_bit_exactly() -> None:
    topk = T.TopkLogprobs(
        token_ids=np.array([[4, 9], [7, 0]], np.int32),
        logprobs=np.array([[-0.1, -2.5], [-0.3, -99999.0]], np.float32),
    )
    targets = T.TensorData.from_dense_numpy(
        np.array([[0.0, -1.25, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]], np.float32), "float32"
    )
    response = T.SampleResponse(
        sequences=[
            T.SampledSequence(
                stop_reason="length",
                tokens_np=np.array([5, 2**31 - 1], np.int32),
                logprobs_np=np.array([-0.5, -0.25], np.float32),
                topk_logprobs_np=topk,
            )
        ],
        prompt_logprobs_np=np.array([np.nan, -3.1, -0.7], np.float32),
        topk_prompt_logprobs_np=topk,
        target_prompt_logprobs=targets,
        prompt_cache_hit_tokens=17,
        prompt_alt_tokens=T.PromptAltTokens(
            tokens=T.TensorData(data=[[3, 4], [5, 6]], dtype="int64"),
            logprobs=T.TensorData(data=[[-1.0, -2.0], [-0.5, -0.75]], dtype="float32"),
        ),
    )
    body = proto.encode_sample_response(response)
    back = proto.decode_sample_response(body)
    assert proto.encode_sample_response(back) == body
    sequence = back.sequences[0]
    assert sequence.tokens == [5, 2**31 - 1] and sequence.tokens_np.dtype == np.int32
    assert sequence.logprobs_np.tobytes() == np.array([-0.5, -0.25], np.float32).tobytes()
    tenth, three_tenths = (float(np.float32(v)) for v in (-0.1, -0.3))
    assert sequence.topk_logprobs == [[(4, tenth), (9, -2.5)], [(7, three_tenths)]]
    assert back.prompt_logprobs_np.tobytes() == response.prompt_logprobs_np.tobytes()
    assert back.prompt_logprobs is not None and back.prompt_logprobs[0] is None
    assert back.prompt_cache_hit_tokens == 17
    assert back.target_prompt_logprobs is not None and back.target_prompt_logprobs.is_sparse
    assert back.target_prompt_logprobs.tolist() == targets.tolist()
    assert back.prompt_alt_tokens is not None
    assert back.prompt_alt_tokens.tokens.tolist() == [[3, 4], [5, 6]]
    assert back.prompt_alt_tokens.logprobs.tolist() == [[-1.0, -2.0], [-0.5, -0.75]]
