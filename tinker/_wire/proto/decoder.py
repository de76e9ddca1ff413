"""Bytes -> messages of `tinker_public.proto`, strictly.

Proto3 parsing rules: unknown fields (and unknown groups) are skipped, a repeated scalar
field is read packed or not, the last value of a singular scalar wins, repeated occurrences
of a singular message field are merged, a oneof keeps its last member, map keys keep their
last entry. Everything else is an error naming the field: a wrong wire type, a truncated
value, an unknown enum value, DTYPE_UNSPECIFIED, invalid UTF-8, sizes that contradict
shapes. Numeric payloads become read-only numpy views of the input (no copy, no Python
lists); nothing larger than the input is ever allocated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt

from tinker._wire.proto import checks
from tinker._wire.proto.errors import ProtobufDecodeError
from tinker._wire.proto.messages import (
    ArrayRecord,
    BatchedTensor,
    Chunk,
    Datum,
    DmelChunk,
    EncodedTextChunk,
    ForwardBackwardOutput,
    ForwardBackwardRequest,
    ImageChunk,
    ImageDimensions,
    LossConfigValue,
    Message,
    PromptAltTokens,
    PromptProvenanceSpan,
    ProvenanceSpan,
    SampledProvenanceSpan,
    SampledSequence,
    SampleResponse,
    SamplingParams,
    SparseCsr,
    StopReason,
    StopStrings,
    StopTokens,
    Tensor,
    TopkLogprobs,
    wire_dtype,
)
from tinker._wire.proto.wire import (
    I32,
    I64,
    LEN,
    VARINT,
    expect,
    fields,
    float32,
    float64,
    int32,
    int64,
    packed_int64s,
    uint32,
)

__all__ = ["decode"]

M = TypeVar("M")
Buf = memoryview
Spans = list[tuple[int, int]]
Array = npt.NDArray[Any]

_INT32 = np.dtype("<i4")
_INT64 = np.dtype("<i8")
_FLOAT32 = np.dtype("<f4")


def decode(data: bytes | bytearray | memoryview, message_type: type[M]) -> M:
    """Parse `data` as one `message_type`; ProtobufDecodeError says what is wrong and where."""
    decoder = _DECODERS.get(message_type)
    if decoder is None:
        if message_type is SparseCsr:
            raise TypeError("a SparseCsr is decoded inside its Tensor, which gives its dtype")
        raise TypeError(f"{message_type!r} is not a message of tinker_public.proto")
    buf = memoryview(data).cast("B")
    try:
        return cast(M, decoder(buf, 0, len(buf)))
    except ProtobufDecodeError as exc:
        raise exc.within(message_type.__name__) from None


# --- helpers ---------------------------------------------------------------------------------


def _array(buf: Buf, a: int, b: int, dtype: np.dtype[Any], name: str) -> Array:
    """`buf[a:b]` as a read-only array of `dtype` (a view, no copy)."""
    size = b - a
    if size % dtype.itemsize:
        raise ProtobufDecodeError(
            f"{size} bytes is not a whole number of {dtype.itemsize}-byte values", name
        )
    if size == 0:
        return np.frombuffer(b"", dtype)
    return np.frombuffer(buf, dtype, size // dtype.itemsize, a)


def _string(buf: Buf, a: int, b: int, name: str) -> str:
    try:
        return str(buf[a:b], "utf-8")
    except UnicodeDecodeError as exc:
        raise ProtobufDecodeError(f"invalid UTF-8 at byte {exc.start}", name) from None


def _merged(buf: Buf, spans: Spans) -> tuple[Buf, int, int]:
    """One buffer holding every occurrence of a singular message field (proto3 merges them)."""
    if len(spans) == 1:
        a, b = spans[0]
        return buf, a, b
    joined = memoryview(b"".join(buf[a:b] for a, b in spans))
    return joined, 0, len(joined)


def _sub(
    decoder: Callable[[Buf, int, int], M],
    buf: Buf,
    spans: Spans,
    name: str,
    index: int | None = None,
) -> M:
    """Decode a nested message (all its occurrences merged), locating errors under `name`
    (and `[index]` for an element of a repeated field)."""
    try:
        return decoder(*_merged(buf, spans))
    except ProtobufDecodeError as exc:
        raise (exc if index is None else exc.within(f"[{index}]")).within(name) from None


def _stop_reason(value: int) -> StopReason:
    try:
        return StopReason(int32(value))
    except ValueError:
        raise ProtobufDecodeError(
            f"unknown StopReason value {int32(value)}", "stop_reason"
        ) from None


def _bytes_field(buf: Buf, wire_type: int, a: int, b: int, name: str) -> tuple[int, int]:
    expect(wire_type, LEN, name)
    return a, b


def _map_entry(buf: Buf, a: int, b: int, value_type: int) -> tuple[str, Spans]:
    """A map entry: its string key and the spans of its value (every occurrence of a
    message value, to be merged; the last 8 bytes of a double)."""
    key = ""
    value: Spans = []
    for number, wire_type, x, y in fields(buf, a, b, _ENTRY):
        if number == 1:
            expect(wire_type, LEN, "key")
            key = _string(buf, x, y, "key")
        elif number == 2:
            expect(wire_type, value_type, "value")
            if value_type == LEN:
                value.append((x, y))
            else:
                value = [(x, y)]
    return key, value


_ENTRY = {1: "key", 2: "value"}


def _message_map(
    buf: Buf, spans: Spans, name: str, decoder: Callable[[Buf, int, int], M]
) -> dict[str, M]:
    out: dict[str, M] = {}
    for a, b in spans:
        try:
            key, value = _map_entry(buf, a, b, LEN)
        except ProtobufDecodeError as exc:
            raise exc.within(name) from None
        where = f"[{key!r}]"
        try:
            out[key] = decoder(*_merged(buf, value)) if value else decoder(buf, 0, 0)
        except ProtobufDecodeError as exc:
            raise exc.within(where).within(name) from None
    return out


def _double_map(buf: Buf, spans: Spans, name: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for a, b in spans:
        try:
            key, value = _map_entry(buf, a, b, I64)
        except ProtobufDecodeError as exc:
            raise exc.within(name) from None
        out[key] = float64(buf, value[0][0]) if value else 0.0
    return out


# --- tensors ---------------------------------------------------------------------------------

_SPARSE = {1: "values", 2: "crow_indices", 3: "col_indices"}
_TENSOR = {1: "dense", 2: "sparse_csr", 3: "dtype", 4: "shape"}
_BATCHED = {1: "data", 2: "offsets", 3: "dtype", 4: "trailing_shape"}
_RECORD = {1: "type_tag", 2: "fields", 3: "num_datums"}
_OUTPUT = {1: "loss_fn_output_type", 2: "loss_fn_outputs", 3: "metrics"}


def _tensor(buf: Buf, start: int, end: int) -> Tensor:
    dtype_value = 0
    shape: list[int] = []
    dense: tuple[int, int] | None = None
    sparse: Spans = []
    for number, wire_type, a, b in fields(buf, start, end, _TENSOR):
        if number == 1:
            dense, sparse = _bytes_field(buf, wire_type, a, b, "dense"), []
        elif number == 2:
            expect(wire_type, LEN, "sparse_csr")
            dense = None
            sparse.append((a, b))
        elif number == 3:
            expect(wire_type, VARINT, "dtype")
            dtype_value = int32(a)
        elif number == 4:
            shape += packed_int64s(buf, wire_type, a, b, "shape")
    dtype = checks.check_dtype(dtype_value, ProtobufDecodeError)
    element = wire_dtype(dtype)
    tensor = Tensor(dtype=dtype, shape=tuple(shape))
    if dense is not None:
        tensor.dense = _array(buf, dense[0], dense[1], element, "dense")
    elif sparse:
        tensor.sparse_csr = _sub(
            lambda b, s, e: _sparse_csr(b, s, e, element), buf, sparse, "sparse_csr"
        )
    checks.check_tensor(tensor, ProtobufDecodeError)
    return tensor


def _sparse_csr(buf: Buf, start: int, end: int, element: np.dtype[Any]) -> SparseCsr:
    spans = [(0, 0)] * 4
    for number, wire_type, a, b in fields(buf, start, end, _SPARSE):
        if number in _SPARSE:
            spans[number] = _bytes_field(buf, wire_type, a, b, _SPARSE[number])
    return SparseCsr(
        values=_array(buf, *spans[1], element, "values"),
        crow_indices=_array(buf, *spans[2], _INT64, "crow_indices"),
        col_indices=_array(buf, *spans[3], _INT64, "col_indices"),
    )


def _batched_tensor(buf: Buf, start: int, end: int) -> BatchedTensor:
    data = offsets = (0, 0)
    dtype_value = 0
    trailing: list[int] = []
    for number, wire_type, a, b in fields(buf, start, end, _BATCHED):
        if number == 1:
            data = _bytes_field(buf, wire_type, a, b, "data")
        elif number == 2:
            offsets = _bytes_field(buf, wire_type, a, b, "offsets")
        elif number == 3:
            expect(wire_type, VARINT, "dtype")
            dtype_value = int32(a)
        elif number == 4:
            trailing += packed_int64s(buf, wire_type, a, b, "trailing_shape")
    dtype = checks.check_dtype(dtype_value, ProtobufDecodeError)
    batched = BatchedTensor(
        data=_array(buf, *data, wire_dtype(dtype), "data"),
        offsets=_array(buf, *offsets, _INT64, "offsets"),
        dtype=dtype,
        trailing_shape=tuple(trailing),
    )
    checks.check_batched_tensor(batched, ProtobufDecodeError)
    return batched


def _array_record(buf: Buf, start: int, end: int) -> ArrayRecord:
    record = ArrayRecord()
    entries: Spans = []
    for number, wire_type, a, b in fields(buf, start, end, _RECORD):
        if number == 1:
            expect(wire_type, LEN, "type_tag")
            record.type_tag = _string(buf, a, b, "type_tag")
        elif number == 2:
            expect(wire_type, LEN, "fields")
            entries.append((a, b))
        elif number == 3:
            expect(wire_type, VARINT, "num_datums")
            record.num_datums = int64(a)
    record.fields = _message_map(buf, entries, "fields", _batched_tensor)
    checks.check_array_record(record, ProtobufDecodeError)
    return record


def _forward_backward_output(buf: Buf, start: int, end: int) -> ForwardBackwardOutput:
    output = ForwardBackwardOutput()
    metrics: Spans = []
    for number, wire_type, a, b in fields(buf, start, end, _OUTPUT):
        if number == 1:
            expect(wire_type, LEN, "loss_fn_output_type")
            output.loss_fn_output_type = _string(buf, a, b, "loss_fn_output_type")
        elif number == 2:
            expect(wire_type, LEN, "loss_fn_outputs")
            index = len(output.loss_fn_outputs)
            output.loss_fn_outputs.append(
                _sub(_array_record, buf, [(a, b)], "loss_fn_outputs", index)
            )
        elif number == 3:
            expect(wire_type, LEN, "metrics")
            metrics.append((a, b))
    output.metrics = _double_map(buf, metrics, "metrics")
    return output


# --- forward_backward request ----------------------------------------------------------------

_REQUEST = {
    1: "model_id",
    2: "seq_id",
    3: "data",
    4: "loss_fn",
    5: "loss_fn_config",
    6: "forward_only",
    7: "loss_fn_config_v2",
}
_DATUM = {1: "model_input", 2: "loss_fn_inputs", 3: "model_input_spans", 4: "loss_fn_input_spans"}
_CHUNK = {1: "encoded_text", 2: "image", 3: "dmel"}
_IMAGE = {1: "data", 2: "format", 3: "expected_tokens", 4: "override_dimensions"}
_DIMENSIONS = {1: "width", 2: "height"}
_SPAN = {1: "prompt_tokens", 2: "sampled_tokens"}
_RUN = {1: "sequence_id", 2: "offset", 3: "length"}
_CONFIG_VALUE = {1: "number", 2: "text"}


def _forward_backward_request(buf: Buf, start: int, end: int) -> ForwardBackwardRequest:
    request = ForwardBackwardRequest()
    config: Spans = []
    config_v2: Spans = []
    for number, wire_type, a, b in fields(buf, start, end, _REQUEST):
        if number == 1:
            expect(wire_type, LEN, "model_id")
            request.model_id = _string(buf, a, b, "model_id")
        elif number == 2:
            expect(wire_type, VARINT, "seq_id")
            request.seq_id = int32(a)
        elif number == 3:
            expect(wire_type, LEN, "data")
            index = len(request.data)
            request.data.append(_sub(_datum, buf, [(a, b)], "data", index))
        elif number == 4:
            expect(wire_type, LEN, "loss_fn")
            request.loss_fn = _string(buf, a, b, "loss_fn")
        elif number == 5:
            expect(wire_type, LEN, "loss_fn_config")
            config.append((a, b))
        elif number == 6:
            expect(wire_type, VARINT, "forward_only")
            request.forward_only = a != 0
        elif number == 7:
            expect(wire_type, LEN, "loss_fn_config_v2")
            config_v2.append((a, b))
    request.loss_fn_config = _double_map(buf, config, "loss_fn_config")
    request.loss_fn_config_v2 = _message_map(
        buf, config_v2, "loss_fn_config_v2", _loss_config_value
    )
    return request


def _loss_config_value(buf: Buf, start: int, end: int) -> LossConfigValue:
    value: LossConfigValue = None
    for number, wire_type, a, b in fields(buf, start, end, _CONFIG_VALUE):
        if number == 1:
            expect(wire_type, I64, "number")
            value = float64(buf, a)
        elif number == 2:
            expect(wire_type, LEN, "text")
            value = _string(buf, a, b, "text")
    return value


def _datum(buf: Buf, start: int, end: int) -> Datum:
    datum = Datum()
    inputs: Spans = []
    for number, wire_type, a, b in fields(buf, start, end, _DATUM):
        if number == 1:
            expect(wire_type, LEN, "model_input")
            index = len(datum.model_input)
            datum.model_input.append(_sub(_chunk, buf, [(a, b)], "model_input", index))
        elif number == 2:
            expect(wire_type, LEN, "loss_fn_inputs")
            inputs.append((a, b))
        elif number in (3, 4):
            name = _DATUM[number]
            expect(wire_type, LEN, name)
            spans = datum.model_input_spans if number == 3 else datum.loss_fn_input_spans
            spans.append(_sub(_provenance_span, buf, [(a, b)], name, len(spans)))
    datum.loss_fn_inputs = _message_map(buf, inputs, "loss_fn_inputs", _tensor)
    return datum


def _oneof(buf: Buf, start: int, end: int, names: dict[int, str]) -> tuple[int, Spans]:
    """The member of a message that is a single oneof of messages: its number and spans."""
    member, spans = 0, cast(Spans, [])
    for number, wire_type, a, b in fields(buf, start, end, names):
        if number in names:
            expect(wire_type, LEN, names[number])
            if number != member:
                member, spans = number, []
            spans.append((a, b))
    if not member:
        raise ProtobufDecodeError(f"none of {', '.join(names.values())} is set")
    return member, spans


def _chunk(buf: Buf, start: int, end: int) -> Chunk:
    member, spans = _oneof(buf, start, end, _CHUNK)
    decoder: Callable[[Buf, int, int], Chunk] = (
        _encoded_text if member == 1 else _image if member == 2 else _dmel
    )
    return _sub(decoder, buf, spans, _CHUNK[member])


def _encoded_text(buf: Buf, start: int, end: int) -> EncodedTextChunk:
    tokens = (0, 0)
    for number, wire_type, a, b in fields(buf, start, end, {1: "tokens"}):
        if number == 1:
            tokens = _bytes_field(buf, wire_type, a, b, "tokens")
    return EncodedTextChunk(tokens=_array(buf, *tokens, _INT32, "tokens"))


def _image(buf: Buf, start: int, end: int) -> ImageChunk:
    image = ImageChunk()
    dimensions: Spans = []
    for number, wire_type, a, b in fields(buf, start, end, _IMAGE):
        if number == 1:
            expect(wire_type, LEN, "data")
            image.data = bytes(buf[a:b])
        elif number == 2:
            expect(wire_type, LEN, "format")
            image.format = _string(buf, a, b, "format")
        elif number == 3:
            expect(wire_type, VARINT, "expected_tokens")
            image.expected_tokens = int32(a)
        elif number == 4:
            expect(wire_type, LEN, "override_dimensions")
            dimensions.append((a, b))
    if dimensions:
        image.override_dimensions = _sub(_image_dimensions, buf, dimensions, "override_dimensions")
    return image


def _image_dimensions(buf: Buf, start: int, end: int) -> ImageDimensions:
    dimensions = ImageDimensions()
    for number, wire_type, a, _ in fields(buf, start, end, _DIMENSIONS):
        if number in _DIMENSIONS:
            expect(wire_type, VARINT, _DIMENSIONS[number])
            setattr(dimensions, _DIMENSIONS[number], uint32(a))
    return dimensions


def _dmel(buf: Buf, start: int, end: int) -> DmelChunk:
    chunk = DmelChunk()
    for number, wire_type, a, b in fields(buf, start, end, {1: "dmel"}):
        if number == 1:
            expect(wire_type, LEN, "dmel")
            chunk.dmel = bytes(buf[a:b])
    return chunk


def _provenance_span(buf: Buf, start: int, end: int) -> ProvenanceSpan:
    member, spans = _oneof(buf, start, end, _SPAN)
    if member == 1:
        return _sub(_prompt_run, buf, spans, "prompt_tokens")
    return _sub(_sampled_run, buf, spans, "sampled_tokens")


def _prompt_run(buf: Buf, start: int, end: int) -> PromptProvenanceSpan:
    return PromptProvenanceSpan(**_run(buf, start, end))


def _sampled_run(buf: Buf, start: int, end: int) -> SampledProvenanceSpan:
    return SampledProvenanceSpan(**_run(buf, start, end))


def _run(buf: Buf, start: int, end: int) -> dict[str, Any]:
    """The fields of a prompt or sampled provenance span (they share one layout)."""
    values: dict[str, Any] = {}
    for number, wire_type, a, b in fields(buf, start, end, _RUN):
        if number == 1:
            expect(wire_type, LEN, "sequence_id")
            values["sequence_id"] = _string(buf, a, b, "sequence_id")
        elif number in (2, 3):
            expect(wire_type, VARINT, _RUN[number])
            values[_RUN[number]] = int64(a)
    return values


# --- sampling --------------------------------------------------------------------------------

_SAMPLE = {
    1: "sequences",
    2: "prompt_logprobs",
    3: "topk_prompt_logprobs",
    4: "prompt_cache_hit_tokens",
    5: "target_prompt_logprobs",
    6: "prompt_alt_tokens",
}
_SEQUENCE = {1: "stop_reason", 2: "tokens", 3: "logprobs", 4: "topk_sampled_logprobs"}
_TOPK = {1: "token_ids", 2: "logprobs", 3: "k", 4: "length"}
_ALT = {1: "tokens", 2: "logprobs"}
_PARAMS = {
    1: "max_tokens",
    2: "seed",
    3: "temperature",
    4: "top_k",
    5: "top_p",
    6: "stop_strs",
    7: "stop_tokens",
}


def _sample_response(buf: Buf, start: int, end: int) -> SampleResponse:
    response = SampleResponse()
    nested: dict[int, Spans] = {3: [], 5: [], 6: []}
    for number, wire_type, a, b in fields(buf, start, end, _SAMPLE):
        if number == 1:
            expect(wire_type, LEN, "sequences")
            index = len(response.sequences)
            response.sequences.append(_sub(_sampled_sequence, buf, [(a, b)], "sequences", index))
        elif number == 2:
            expect(wire_type, LEN, "prompt_logprobs")
            response.prompt_logprobs = _array(buf, a, b, _FLOAT32, "prompt_logprobs")
        elif number in nested:
            expect(wire_type, LEN, _SAMPLE[number])
            nested[number].append((a, b))
        elif number == 4:
            expect(wire_type, VARINT, "prompt_cache_hit_tokens")
            response.prompt_cache_hit_tokens = int32(a)
    if nested[3]:
        response.topk_prompt_logprobs = _sub(_topk, buf, nested[3], "topk_prompt_logprobs")
    if nested[5]:
        response.target_prompt_logprobs = _sub(_tensor, buf, nested[5], "target_prompt_logprobs")
    if nested[6]:
        response.prompt_alt_tokens = _sub(_prompt_alt_tokens, buf, nested[6], "prompt_alt_tokens")
    return response


def _sampled_sequence(buf: Buf, start: int, end: int) -> SampledSequence:
    stop_reason = StopReason.STOP
    tokens = (0, 0)
    logprobs: tuple[int, int] | None = None
    topk: Spans = []
    for number, wire_type, a, b in fields(buf, start, end, _SEQUENCE):
        if number == 1:
            expect(wire_type, VARINT, "stop_reason")
            stop_reason = _stop_reason(a)
        elif number == 2:
            tokens = _bytes_field(buf, wire_type, a, b, "tokens")
        elif number == 3:
            logprobs = _bytes_field(buf, wire_type, a, b, "logprobs")
        elif number == 4:
            expect(wire_type, LEN, "topk_sampled_logprobs")
            topk.append((a, b))
    return SampledSequence(
        stop_reason=stop_reason,
        tokens=_array(buf, *tokens, _INT32, "tokens"),
        logprobs=None if logprobs is None else _array(buf, *logprobs, _FLOAT32, "logprobs"),
        topk_sampled_logprobs=_sub(_topk, buf, topk, "topk_sampled_logprobs") if topk else None,
    )


def _topk(buf: Buf, start: int, end: int) -> TopkLogprobs:
    token_ids = logprobs = (0, 0)
    k = length = 0
    for number, wire_type, a, b in fields(buf, start, end, _TOPK):
        if number == 1:
            token_ids = _bytes_field(buf, wire_type, a, b, "token_ids")
        elif number == 2:
            logprobs = _bytes_field(buf, wire_type, a, b, "logprobs")
        elif number == 3:
            expect(wire_type, VARINT, "k")
            k = uint32(a)
        elif number == 4:
            expect(wire_type, VARINT, "length")
            length = uint32(a)
    topk = TopkLogprobs(
        token_ids=_array(buf, *token_ids, _INT32, "token_ids"),
        logprobs=_array(buf, *logprobs, _FLOAT32, "logprobs"),
        k=k,
        length=length,
    )
    checks.check_topk(topk, ProtobufDecodeError)
    return topk


def _prompt_alt_tokens(buf: Buf, start: int, end: int) -> PromptAltTokens:
    spans: dict[int, Spans] = {1: [], 2: []}
    for number, wire_type, a, b in fields(buf, start, end, _ALT):
        if number in spans:
            expect(wire_type, LEN, _ALT[number])
            spans[number].append((a, b))
    return PromptAltTokens(
        tokens=_sub(_tensor, buf, spans[1], "tokens") if spans[1] else None,
        logprobs=_sub(_tensor, buf, spans[2], "logprobs") if spans[2] else None,
    )


def _sampling_params(buf: Buf, start: int, end: int) -> SamplingParams:
    params = SamplingParams()
    stop_member, stop_spans = 0, cast(Spans, [])
    for number, wire_type, a, b in fields(buf, start, end, _PARAMS):
        if number in (1, 4):
            expect(wire_type, VARINT, _PARAMS[number])
            setattr(params, _PARAMS[number], int32(a))
        elif number == 2:
            expect(wire_type, VARINT, "seed")
            params.seed = a
        elif number in (3, 5):
            expect(wire_type, I32, _PARAMS[number])
            setattr(params, _PARAMS[number], float32(buf, a))
        elif number in (6, 7):
            expect(wire_type, LEN, _PARAMS[number])
            if number != stop_member:
                stop_member, stop_spans = number, []
            stop_spans.append((a, b))
    if stop_member == 6:
        params.stop = _sub(_stop_strings, buf, stop_spans, "stop_strs")
    elif stop_member == 7:
        params.stop = _sub(_stop_tokens, buf, stop_spans, "stop_tokens")
    return params


def _stop_strings(buf: Buf, start: int, end: int) -> StopStrings:
    stop = StopStrings()
    for number, wire_type, a, b in fields(buf, start, end, {1: "values"}):
        if number == 1:
            expect(wire_type, LEN, "values")
            stop.values.append(_string(buf, a, b, f"values[{len(stop.values)}]"))
    return stop


def _stop_tokens(buf: Buf, start: int, end: int) -> StopTokens:
    stop = StopTokens()
    for number, wire_type, a, b in fields(buf, start, end, {1: "values"}):
        if number == 1:
            stop.values += [int32(v) for v in packed_int64s(buf, wire_type, a, b, "values")]
    return stop


_DECODERS: dict[type[Any], Callable[[Buf, int, int], Message]] = {
    ArrayRecord: _array_record,
    BatchedTensor: _batched_tensor,
    Datum: _datum,
    DmelChunk: _dmel,
    EncodedTextChunk: _encoded_text,
    ForwardBackwardOutput: _forward_backward_output,
    ForwardBackwardRequest: _forward_backward_request,
    ImageChunk: _image,
    ImageDimensions: _image_dimensions,
    PromptAltTokens: _prompt_alt_tokens,
    PromptProvenanceSpan: _prompt_run,
    SampledProvenanceSpan: _sampled_run,
    SampleResponse: _sample_response,
    SampledSequence: _sampled_sequence,
    SamplingParams: _sampling_params,
    StopStrings: _stop_strings,
    StopTokens: _stop_tokens,
    Tensor: _tensor,
    TopkLogprobs: _topk,
}
