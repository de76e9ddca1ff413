"""Malformed and hostile bodies: each is a ProtobufDecodeError (a ValueError) naming the
message and field, never another exception and never an allocation the input does not
justify. Random and mutated bodies are fuzzed through every decoder."""

from __future__ import annotations

import contextlib
import pickle
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proto_support import INDEX, fixture_bytes

from tinker._wire import proto
from tinker._wire.proto import mapping
from tinker._wire.proto import messages as m
from tinker._wire.proto.wire import tag, varint

LEN, VAR, I64 = 2, 0, 1


def field(number: int, payload: bytes) -> bytes:
    return tag(number, LEN) + varint(len(payload)) + payload


def number(number: int, value: int) -> bytes:
    return tag(number, VAR) + varint(value)


def tensor(dtype: int, dense: bytes | None = None, shape: list[int] | None = None) -> bytes:
    body = b"" if dense is None else field(1, dense)
    body += number(3, dtype) if dtype else b""
    if shape:
        body += field(4, b"".join(varint(d) for d in shape))
    return body


def request_with_input(tensor_bytes: bytes, key: str = "w") -> bytes:
    entry = field(1, key.encode()) + field(2, tensor_bytes)
    return field(3, field(2, entry))


def csr_tensor(values: bytes, crow: list[int], col: list[int], shape: list[int]) -> bytes:
    sparse = field(1, values) + field(2, np.array(crow, "<i8").tobytes())
    sparse += field(3, np.array(col, "<i8").tobytes())
    return field(2, sparse) + number(3, 1) + field(4, b"".join(varint(d) for d in shape))


def batched(data: bytes, offsets: list[int], dtype: int = 1, trailing: list[int] = ()) -> bytes:
    body = field(1, data) + field(2, np.array(offsets, "<i8").tobytes()) + number(3, dtype)
    if trailing:
        body += field(4, b"".join(varint(d) for d in trailing))
    return body


def output_with(record: bytes) -> bytes:
    return field(2, record)


def record(fields: dict[str, bytes], num_datums: int = 0) -> bytes:
    body = b"".join(field(2, field(1, k.encode()) + field(2, v)) for k, v in fields.items())
    return body + (number(3, num_datums) if num_datums else b"")


F32 = struct.pack("<f", 1.0)

CASES: list[tuple[str, type[Any], bytes, str]] = [
    (
        "tag only",
        m.ForwardBackwardRequest,
        b"\x10",
        "ForwardBackwardRequest.seq_id: truncated varint",
    ),
    ("varint cut", m.ForwardBackwardRequest, b"\x10\x80\x80", "seq_id: truncated varint"),
    ("tag cut", m.ForwardBackwardRequest, b"\x80", "ForwardBackwardRequest: truncated varint"),
    (
        "varint of 11 bytes",
        m.ForwardBackwardRequest,
        b"\x10" + b"\xff" * 10 + b"\x01",
        "seq_id: varint longer than 64 bits",
    ),
    (
        "length past the end",
        m.ForwardBackwardRequest,
        b"\x0a\x05ab",
        "ForwardBackwardRequest.model_id: length 5 runs past the end of the message (2 bytes left)",
    ),
    (
        "huge length",
        m.ForwardBackwardRequest,
        b"\x1a\xff\xff\xff\xff\x0f",
        "data: length 4294967295 runs past the end",
    ),
    (
        "wrong wire type",
        m.ForwardBackwardRequest,
        b"\x08\x01",
        "model_id: wire type varint where length-delimited is expected",
    ),
    (
        "wrong wire type deep",
        m.ForwardBackwardRequest,
        request_with_input(tag(3, I64) + b"\0" * 8),
        "ForwardBackwardRequest.data[0].loss_fn_inputs['w'].dtype: wire type 64-bit where varint",
    ),
    ("field number 0", m.ForwardBackwardRequest, b"\x00\x01", "invalid field number 0"),
    (
        "wire type 6",
        m.ForwardBackwardRequest,
        b"\x0e",
        "ForwardBackwardRequest.model_id: invalid wire type 6",
    ),
    ("stray end-group", m.ForwardBackwardRequest, b"\x0c", "end-group tag without a matching"),
    ("unclosed group", m.ForwardBackwardRequest, b"\x0b\x08\x01", "group 1 is not closed"),
    ("crossed groups", m.ForwardBackwardRequest, b"\x0b\x14", "end-group 2 does not match"),
    (
        "groups nested too deep",
        m.ForwardBackwardRequest,
        tag(90, 3) * 101 + tag(90, 4) * 101,
        "groups nested deeper than 100",
    ),
    (
        "invalid UTF-8",
        m.ForwardBackwardRequest,
        field(1, b"a\xff"),
        "model_id: invalid UTF-8 at byte 1",
    ),
    (
        "unknown StopReason",
        m.SampleResponse,
        field(1, number(1, 7)),
        "SampleResponse.sequences[0].stop_reason: unknown StopReason value 7",
    ),
    (
        "DTYPE_UNSPECIFIED",
        m.ForwardBackwardRequest,
        request_with_input(tensor(0, F32, [1])),
        "data[0].loss_fn_inputs['w'].dtype: DTYPE_UNSPECIFIED is not an element type",
    ),
    ("unknown DType", m.Tensor, tensor(9, F32), "Tensor.dtype: unknown DType value 9"),
    (
        "map value missing",
        m.ForwardBackwardRequest,
        field(3, field(2, field(1, b"w"))),
        "loss_fn_inputs['w'].dtype: DTYPE_UNSPECIFIED",
    ),
    (
        "shape claims 10**12 values",
        m.ForwardBackwardRequest,
        request_with_input(tensor(2, b"\0" * 8, [10**12])),
        "loss_fn_inputs['w'].shape: 1 values do not fill shape [1000000000000]",
    ),
    (
        "negative dimension",
        m.Tensor,
        tensor(1, F32, [2**64 - 1]),
        "shape: negative dimension in [-1]",
    ),
    (
        "ragged bytes",
        m.Tensor,
        tensor(1, b"\0" * 7),
        "Tensor.dense: 7 bytes is not a whole number of 4-byte values",
    ),
    (
        "CSR on a 1-D shape",
        m.Tensor,
        csr_tensor(F32, [0, 1], [0], [1]),
        "Tensor.sparse_csr.shape: a CSR tensor needs a 2-D shape, got [1]",
    ),
    (
        "CSR row pointers",
        m.Tensor,
        csr_tensor(F32, [0, 1], [0], [2, 2]),
        "sparse_csr.crow_indices: 2 row pointers for 2 rows",
    ),
    (
        "CSR values count",
        m.Tensor,
        csr_tensor(F32 * 2, [0, 1, 1], [0], [2, 2]),
        "sparse_csr.values: 2 values for 1 column indices",
    ),
    (
        "CSR column out of range",
        m.Tensor,
        csr_tensor(F32, [0, 1, 1], [5], [2, 2]),
        "sparse_csr.col_indices: column index outside [0, 2)",
    ),
    (
        "CSR decreasing rows",
        m.Tensor,
        csr_tensor(F32 * 2, [0, 2, 1, 2], [0, 1], [3, 2]),
        "sparse_csr.crow_indices: row pointers decrease",
    ),
    (
        "CSR repeated column",
        m.Tensor,
        csr_tensor(F32 * 2, [0, 2], [1, 1], [1, 2]),
        "column indices must increase within each row",
    ),
    (
        "CSR pointers past the values",
        m.Tensor,
        csr_tensor(F32, [0, 3], [0], [1, 2]),
        "row pointers must run from 0 to 1",
    ),
    (
        "offsets past the data",
        m.ForwardBackwardOutput,
        output_with(record({"logprobs": batched(F32, [0, 8])})),
        "ForwardBackwardOutput.loss_fn_outputs[0].fields['logprobs'].offsets: offsets must run "
        "from 0 to 4",
    ),
    (
        "offsets between values",
        m.ForwardBackwardOutput,
        output_with(record({"x": batched(F32 * 2, [0, 2, 8])})),
        "offsets: an offset is not a multiple of 4 bytes",
    ),
    (
        "offsets going back",
        m.ForwardBackwardOutput,
        output_with(record({"x": batched(F32 * 2, [0, 8, 4, 8])})),
        "offsets: offsets decrease",
    ),
    (
        "data without offsets",
        m.ForwardBackwardOutput,
        output_with(record({"x": field(1, F32) + number(3, 1)})),
        "offsets: no offsets for 1 values",
    ),
    (
        "rows of the trailing shape",
        m.ForwardBackwardOutput,
        output_with(record({"x": batched(F32 * 3, [0, 12], trailing=[2])})),
        "fields['x'].data: datum 0 has 3 values, not whole rows of trailing_shape [2]",
    ),
    (
        "fields disagree on datums",
        m.ForwardBackwardOutput,
        output_with(record({"a": batched(F32, [0, 4]), "b": batched(F32, [0, 0, 4])})),
        "loss_fn_outputs[0].fields['b']: 2 datums where the record has 1",
    ),
    (
        "num_datums disagrees",
        m.ForwardBackwardOutput,
        output_with(record({"a": batched(F32, [0, 4])}, num_datums=3)),
        "fields['a']: 1 datums where the record has 3",
    ),
    (
        "top-k table size",
        m.SampleResponse,
        field(3, field(1, b"\0" * 4) + field(2, F32) + number(3, 2) + number(4, 1)),
        "SampleResponse.topk_prompt_logprobs.token_ids: 1 cells where length x k = 1 x 2 = 2",
    ),
    (
        "empty chunk",
        m.ForwardBackwardRequest,
        field(3, field(1, b"")),
        "data[0].model_input[0]: none of encoded_text, image, dmel is set",
    ),
    (
        "empty provenance span",
        m.Datum,
        field(3, b""),
        "Datum.model_input_spans[0]: none of prompt_tokens, sampled_tokens is set",
    ),
]


@pytest.mark.parametrize(
    ("cls", "body", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_malformed_body_names_the_field(cls: type[Any], body: bytes, expected: str) -> None:
    with pytest.raises(proto.ProtobufDecodeError) as raised:
        proto.decode(body, cls)
    assert expected in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_decode_error_pickles_with_its_location() -> None:
    with pytest.raises(proto.ProtobufDecodeError) as raised:
        proto.decode(field(1, b"\xff"), m.ForwardBackwardRequest)
    copy = pickle.loads(pickle.dumps(raised.value))
    assert (
        str(copy) == str(raised.value) == "ForwardBackwardRequest.model_id: invalid UTF-8 at byte 0"
    )


def test_a_huge_sparse_tensor_stays_sparse_and_is_refused_only_where_densified() -> None:
    body = request_with_input(csr_tensor(F32, [0, 1], [0], [1, 2**40]), key="weights")
    weights = proto.decode_forward_backward_request(body).data[0].loss_fn_inputs["weights"]
    assert weights.is_sparse and weights.shape == [1, 2**40] and weights.data == [1.0]
    assert (weights.sparse_crow_indices, weights.sparse_col_indices) == ([0, 1], [0])
    tensor = proto.decode(body, m.ForwardBackwardRequest).data[0].loss_fn_inputs["weights"]
    with pytest.raises(proto.ProtobufDecodeError, match="too large to densify"):
        mapping.tensor_array(tensor)


def test_records_with_different_fields_are_refused() -> None:
    body = output_with(record({"a": batched(F32, [0, 4])})) + output_with(
        record({"b": batched(F32, [0, 4])})
    )
    with pytest.raises(proto.ProtobufDecodeError, match=r"loss_fn_outputs\[1\]: fields \['b'\]"):
        proto.decode_forward_backward_output(body)


def test_invalid_datum_values_are_decode_errors() -> None:
    text = field(1, field(1, field(1, np.array([-4], "<i4").tobytes())))
    with pytest.raises(proto.ProtobufDecodeError, match=r"data\[0\]: .*must be >= 0"):
        proto.decode_forward_backward_request(field(3, text))


# --- fuzzing ---------------------------------------------------------------------------------

MESSAGES = [
    m.ForwardBackwardRequest,
    m.ForwardBackwardOutput,
    m.SampleResponse,
    m.SamplingParams,
    m.Tensor,
    m.Datum,
    m.ArrayRecord,
    m.TopkLogprobs,
]
BODY_DECODERS = [
    proto.decode_forward_backward_request,
    proto.decode_forward_backward_output,
    proto.decode_sample_response,
]
SEEDS = [fixture_bytes(entry["name"]) for entry in INDEX]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def only_decode_errors(body: bytes) -> None:
    for cls in MESSAGES:
        with contextlib.suppress(proto.ProtobufDecodeError):
            proto.decode(body, cls)
    for decode in BODY_DECODERS:
        with contextlib.suppress(proto.ProtobufDecodeError):
            decode(body)


@FUZZ
@given(st.binary(max_size=64))
def test_random_bytes_raise_only_decode_errors(body: bytes) -> None:
    only_decode_errors(body)


@FUZZ
@given(st.sampled_from(SEEDS), st.data())
def test_mutated_bodies_raise_only_decode_errors(seed: bytes, data: st.DataObject) -> None:
    body = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 4))):
        if not body:
            break
        position = data.draw(st.integers(0, len(body) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "drop", "insert"]))
        if action == "flip":
            body[position] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del body[position:]
        elif action == "drop":
            del body[position]
        else:
            body[position:position] = data.draw(st.binary(min_size=1, max_size=4))
    only_decode_errors(bytes(body))


# --- values the encoder refuses --------------------------------------------------------------


def datum_with(tensor: m.Tensor) -> m.ForwardBackwardRequest:
    return m.ForwardBackwardRequest(data=[m.Datum(loss_fn_inputs={"w": tensor})])


F32S = np.array([1.0, 2.0], np.float32)
ENCODE_CASES: list[tuple[str, Any, str]] = [
    (
        "wrong element type",
        datum_with(m.Tensor(dtype=m.DType.FLOAT32, dense=np.array([1, 2]))),
        "ForwardBackwardRequest.data[0].loss_fn_inputs['w'].dense: int64 values where float32",
    ),
    (
        "values that do not fill the shape",
        datum_with(m.Tensor(dtype=m.DType.FLOAT32, shape=(3,), dense=F32S)),
        "loss_fn_inputs['w'].dense: 2 values do not fill shape [3] (3 values)",
    ),
    (
        "DTYPE_UNSPECIFIED",
        datum_with(m.Tensor(dtype=m.DType.UNSPECIFIED, dense=F32S)),
        "loss_fn_inputs['w'].dtype: DTYPE_UNSPECIFIED is not an element type",
    ),
    (
        "both members of the oneof",
        m.Tensor(
            dtype=m.DType.FLOAT32,
            shape=(1, 2),
            dense=F32S,
            sparse_csr=m.SparseCsr(
                values=F32S, crow_indices=np.array([0, 2]), col_indices=np.array([0, 1])
            ),
        ),
        "Tensor.dense: both dense and sparse_csr are set",
    ),
    (
        "a malformed CSR layout",
        m.Tensor(
            dtype=m.DType.FLOAT32,
            shape=(1, 2),
            sparse_csr=m.SparseCsr(
                values=F32S, crow_indices=np.array([0, 2]), col_indices=np.array([1, 1])
            ),
        ),
        "Tensor.sparse_csr.col_indices: column indices must increase within each row",
    ),
    (
        "seq_id beyond int32",
        m.ForwardBackwardRequest(seq_id=2**31),
        "ForwardBackwardRequest.seq_id: 2147483648 is outside the int32 range",
    ),
    (
        "tokens as a list",
        m.ForwardBackwardRequest(data=[m.Datum(model_input=[m.EncodedTextChunk(tokens=[1])])]),
        "data[0].model_input[0].encoded_text.tokens: expected a numpy array, got list",
    ),
    (
        "a chunk that is not a chunk",
        m.ForwardBackwardRequest(data=[m.Datum(model_input=[m.DType.INT64])]),
        "data[0].model_input[0]: DType is not a chunk message",
    ),
    (
        "temperature beyond float32",
        m.SamplingParams(temperature=1e39),
        "SamplingParams.temperature: 1e+39 is outside the float32 range",
    ),
    (
        "a stop that is neither",
        m.SamplingParams(stop=["x"]),  # type: ignore[arg-type]
        "SamplingParams.stop: expected StopStrings or StopTokens, got list",
    ),
    (
        "a top-k table of the wrong size",
        m.TopkLogprobs(token_ids=np.zeros(3, "<i4"), logprobs=np.zeros(3, "<f4"), k=2, length=1),
        "TopkLogprobs.token_ids: 3 cells where length x k = 1 x 2 = 2",
    ),
    (
        "a metric that is not a number",
        m.ForwardBackwardOutput(metrics={"loss": "high"}),  # type: ignore[dict-item]
        "ForwardBackwardOutput.metrics['loss']: expected a number, got str",
    ),
]


@pytest.mark.parametrize(
    ("message", "expected"), [c[1:] for c in ENCODE_CASES], ids=[c[0] for c in ENCODE_CASES]
)
def test_unencodable_values_name_the_field(message: Any, expected: str) -> None:
    with pytest.raises(proto.ProtobufEncodeError) as raised:
        proto.encode(message)
    assert expected in str(raised.value)


def test_a_sparse_csr_is_only_written_inside_its_tensor() -> None:
    csr = m.SparseCsr(values=F32S, crow_indices=np.array([0, 2]), col_indices=np.array([0, 1]))
    with pytest.raises(TypeError, match="inside its Tensor"):
        proto.encode(csr)
    with pytest.raises(TypeError, match="inside its Tensor"):
        proto.decode(b"", m.SparseCsr)


def test_a_sample_response_whose_values_the_types_refuse_is_a_decode_error() -> None:
    """prompt_alt_tokens with float32 tokens: well-formed bytes, but not a valid answer."""
    seed = (
        b'2\x12\n\x10\n\x08\x01\x00\x00\x00\x02\x00\x00\x00\x18\x03"\x02\x01\x02'
        b'2\x12\x12\x10\n\x08\x00\x00\x80\xbf\x00\x00\x00\xc0\x18\x01"\x02\x01\x02'
    )
    mapping.decode_sample_response(seed)  # the seed itself is valid
    bad = seed.replace(b"\x18\x03", b"\x18\x01", 1)  # the tokens' dtype becomes float32
    with pytest.raises(proto.ProtobufDecodeError, match="tokens must be int64"):
        mapping.decode_sample_response(bad)
