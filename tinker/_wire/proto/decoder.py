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
from tinker._wire.proto import messages as m
from tinker._wire.proto.errors import ProtobufDecodeError
from tinker._wire.proto.schema import SCHEMA, Kind, Table
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
Values = dict[str, Any]
Array = npt.NDArray[Any]
Decoder = Callable[[Buf, int, int], Any]

_WIRE_TYPES = {
    **dict.fromkeys((Kind.STRING, Kind.BYTES, Kind.MESSAGE, Kind.STRING_LIST), LEN),
    **dict.fromkeys((Kind.DOUBLE_MAP, Kind.MESSAGE_MAP), LEN),
    **dict.fromkeys((Kind.INT32, Kind.INT64, Kind.UINT32, Kind.UINT64), VARINT),
    **dict.fromkeys((Kind.BOOL, Kind.ENUM), VARINT),
    Kind.DOUBLE: I64,
    Kind.FLOAT: I32,
}
_VARINTS: dict[Kind, Callable[[int], Any]] = {
    Kind.INT32: int32,
    Kind.INT64: int64,
    Kind.UINT32: uint32,
    Kind.UINT64: int,
    Kind.BOOL: bool,
    Kind.ENUM: int32,
}


def decode(data: bytes | bytearray | memoryview, message_type: type[M]) -> M:
    """Parse `data` as one `message_type`; ProtobufDecodeError says what is wrong and where."""
    decoder = _DECODERS.get(message_type)
    if decoder is None:
        if message_type is m.SparseCsr:
            raise TypeError("a SparseCsr is decoded inside its Tensor, which gives its dtype")
        raise TypeError(f"{message_type!r} is not a message of tinker_public.proto")
    buf = memoryview(data).cast("B")
    try:
        return cast(M, decoder(buf, 0, len(buf)))
    except ProtobufDecodeError as exc:
        raise exc.within(message_type.__name__) from None


# --- reading fields --------------------------------------------------------------------------


# How _scan keeps each kind of field (small ints: compared on every field read).
_NUMBER, _SPAN, _TEXT, _DOUBLE, _FLOAT, _TEXTS, _SPANS, _PACKED64, _PACKED32 = range(9)
_ACTIONS = {
    **dict.fromkeys(_VARINTS, _NUMBER),
    Kind.BYTES: _SPAN,
    Kind.STRING: _TEXT,
    Kind.DOUBLE: _DOUBLE,
    Kind.FLOAT: _FLOAT,
    Kind.STRING_LIST: _TEXTS,
    Kind.MESSAGE: _SPANS,
    Kind.DOUBLE_MAP: _SPANS,
    Kind.MESSAGE_MAP: _SPANS,
    Kind.PACKED_INT64: _PACKED64,
    Kind.PACKED_INT32: _PACKED32,
}


class _Plan:
    """How to read one message: per field number its name, what to keep, the wire type it
    must arrive with, its varint conversion and the other members of its oneof; per `bytes`
    field of numbers its numpy dtype."""

    __slots__ = ("dtypes", "names", "steps")

    def __init__(self, table: Table) -> None:
        self.names = table.names
        self.steps = {
            f.number: (
                f.name,
                _ACTIONS[f.kind],
                _WIRE_TYPES.get(f.kind, LEN),
                _VARINTS.get(f.kind, int),
                tuple(n for n in table.oneofs.get(f.oneof, ()) if n != f.name),
            )
            for f in table.fields
        }
        self.dtypes = {f.name: np.dtype(f.array) for f in table.fields if f.array}


def _scan(buf: Buf, start: int, end: int, plan: _Plan) -> Values:
    """The known fields of one message by name: scalars converted, strings decoded, `bytes`
    as their span, messages and map entries as lists of spans, packed numbers as lists."""
    values: Values = {}
    steps = plan.steps
    for number, wire_type, a, b in fields(buf, start, end, plan.names):
        step = steps.get(number)
        if step is None:
            continue  # an unknown field: skipped, as proto3 requires
        name, action, wanted, convert, rivals = step
        if action >= _PACKED64:
            numbers = packed_int64s(buf, wire_type, a, b, name)
            values.setdefault(name, []).extend(
                numbers if action == _PACKED64 else map(int32, numbers)
            )
            continue
        if wire_type != wanted:
            expect(wire_type, wanted, name)
        for rival in rivals:  # a oneof keeps only its last member
            values.pop(rival, None)
        if action == _NUMBER:
            values[name] = convert(a)
        elif action == _SPAN:
            values[name] = (a, b)
        elif action == _SPANS:
            values.setdefault(name, []).append((a, b))
        elif action == _TEXT:
            values[name] = _string(buf, a, b, name)
        elif action == _DOUBLE:
            values[name] = float64(buf, a)
        elif action == _FLOAT:
            values[name] = float32(buf, a)
        else:
            items = values.setdefault(name, [])
            items.append(_string(buf, a, b, f"{name}[{len(items)}]"))
    return values


def _string(buf: Buf, a: int, b: int, name: str) -> str:
    try:
        return str(buf[a:b], "utf-8")
    except UnicodeDecodeError as exc:
        raise ProtobufDecodeError(f"invalid UTF-8 at byte {exc.start}", name) from None


def _array(buf: Buf, span: tuple[int, int] | None, dtype: np.dtype[Any], name: str) -> Array:
    """`buf[a:b]` as a read-only array of `dtype` (a view, no copy); empty when absent."""
    a, b = span or (0, 0)
    size = b - a
    if size % dtype.itemsize:
        raise ProtobufDecodeError(
            f"{size} bytes is not a whole number of {dtype.itemsize}-byte values", name
        )
    if size == 0:
        return np.frombuffer(b"", dtype)
    return np.frombuffer(buf, dtype, size // dtype.itemsize, a)


def _numbers(buf: Buf, values: Values, plan: _Plan, name: str) -> Array:
    """A `bytes` field of numbers whose element type the schema fixes."""
    return _array(buf, values.get(name), plan.dtypes[name], name)


def _optional_numbers(buf: Buf, values: Values, plan: _Plan, name: str) -> Array | None:
    return _numbers(buf, values, plan, name) if name in values else None


def _merged(buf: Buf, spans: Spans) -> tuple[Buf, int, int]:
    """One buffer holding every occurrence of a singular message field (proto3 merges them)."""
    if len(spans) == 1:
        a, b = spans[0]
        return buf, a, b
    joined = memoryview(b"".join(buf[a:b] for a, b in spans))
    return joined, 0, len(joined)


def _sub(decoder: Decoder, buf: Buf, spans: Spans, name: str, index: int | None = None) -> Any:
    """Decode a nested message (all its occurrences merged), locating errors under `name`
    (and `[index]` for an element of a repeated field)."""
    try:
        return decoder(*_merged(buf, spans))
    except ProtobufDecodeError as exc:
        raise (exc if index is None else exc.within(f"[{index}]")).within(name) from None


def _one(decoder: Decoder, buf: Buf, values: Values, name: str) -> Any:
    """A singular message field, or None when absent."""
    spans = values.get(name)
    return None if spans is None else _sub(decoder, buf, spans, name)


def _many(decoder: Decoder, buf: Buf, values: Values, name: str) -> list[Any]:
    """A repeated message field, element by element."""
    spans = values.get(name, ())
    return [_sub(decoder, buf, [span], name, index) for index, span in enumerate(spans)]


def _message_map(decoder: Decoder, buf: Buf, values: Values, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a, b in values.get(name, ()):
        try:
            entry = _scan(buf, a, b, _MAP_ENTRY)
        except ProtobufDecodeError as exc:
            raise exc.within(name) from None
        key = entry.get("key", "")
        spans = entry.get("value")
        try:
            out[key] = decoder(*_merged(buf, spans)) if spans else decoder(buf, 0, 0)
        except ProtobufDecodeError as exc:
            raise exc.within(f"[{key!r}]").within(name) from None
    return out


def _double_map(buf: Buf, values: Values, name: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for a, b in values.get(name, ()):
        try:
            entry = _scan(buf, a, b, _DOUBLE_ENTRY)
        except ProtobufDecodeError as exc:
            raise exc.within(name) from None
        out[entry.get("key", "")] = entry.get("value", 0.0)
    return out


def _oneof_member(buf: Buf, start: int, end: int, plan: _Plan) -> tuple[str, Spans]:
    """The member set in a message that is a single oneof of messages, and its spans."""
    values = _scan(buf, start, end, plan)
    if not values:
        raise ProtobufDecodeError(f"none of {', '.join(plan.names.values())} is set")
    ((member, spans),) = values.items()
    return member, spans


_T = {name: _Plan(table) for name, table in SCHEMA.items()}
_MAP_ENTRY, _DOUBLE_ENTRY = _T["MapEntry"], _T["DoubleMapEntry"]


# --- tensors ---------------------------------------------------------------------------------


def _tensor(buf: Buf, start: int, end: int) -> m.Tensor:
    values = _scan(buf, start, end, _T["Tensor"])
    dtype = checks.check_dtype(values.get("dtype", 0), ProtobufDecodeError)
    element = m.wire_dtype(dtype)
    tensor = m.Tensor(dtype=dtype, shape=tuple(values.get("shape", ())))
    if "dense" in values:
        tensor.dense = _array(buf, values["dense"], element, "dense")
    elif "sparse_csr" in values:
        tensor.sparse_csr = _sub(
            lambda b, s, e: _sparse_csr(b, s, e, element), buf, values["sparse_csr"], "sparse_csr"
        )
    checks.check_tensor(tensor, ProtobufDecodeError)
    return tensor


def _sparse_csr(buf: Buf, start: int, end: int, element: np.dtype[Any]) -> m.SparseCsr:
    plan = _T["SparseCsr"]
    values = _scan(buf, start, end, plan)
    return m.SparseCsr(
        values=_array(buf, values.get("values"), element, "values"),
        crow_indices=_numbers(buf, values, plan, "crow_indices"),
        col_indices=_numbers(buf, values, plan, "col_indices"),
    )


def _batched_tensor(buf: Buf, start: int, end: int) -> m.BatchedTensor:
    plan = _T["BatchedTensor"]
    values = _scan(buf, start, end, plan)
    dtype = checks.check_dtype(values.get("dtype", 0), ProtobufDecodeError)
    batched = m.BatchedTensor(
        data=_array(buf, values.get("data"), m.wire_dtype(dtype), "data"),
        offsets=_numbers(buf, values, plan, "offsets"),
        dtype=dtype,
        trailing_shape=tuple(values.get("trailing_shape", ())),
    )
    checks.check_batched_tensor(batched, ProtobufDecodeError)
    return batched


def _array_record(buf: Buf, start: int, end: int) -> m.ArrayRecord:
    values = _scan(buf, start, end, _T["ArrayRecord"])
    record = m.ArrayRecord(
        fields=_message_map(_batched_tensor, buf, values, "fields"),
        num_datums=values.get("num_datums", 0),
        type_tag=values.get("type_tag", ""),
    )
    checks.check_array_record(record, ProtobufDecodeError)
    return record


def _forward_backward_output(buf: Buf, start: int, end: int) -> m.ForwardBackwardOutput:
    values = _scan(buf, start, end, _T["ForwardBackwardOutput"])
    return m.ForwardBackwardOutput(
        loss_fn_outputs=_many(_array_record, buf, values, "loss_fn_outputs"),
        metrics=_double_map(buf, values, "metrics"),
        loss_fn_output_type=values.get("loss_fn_output_type", ""),
    )


# --- forward_backward request ----------------------------------------------------------------


def _forward_backward_request(buf: Buf, start: int, end: int) -> m.ForwardBackwardRequest:
    values = _scan(buf, start, end, _T["ForwardBackwardRequest"])
    return m.ForwardBackwardRequest(
        model_id=values.get("model_id", ""),
        seq_id=values.get("seq_id", 0),
        data=_many(_datum, buf, values, "data"),
        loss_fn=values.get("loss_fn", ""),
        loss_fn_config=_double_map(buf, values, "loss_fn_config"),
        forward_only=values.get("forward_only", False),
        loss_fn_config_v2=_message_map(_loss_config_value, buf, values, "loss_fn_config_v2"),
    )


def _loss_config_value(buf: Buf, start: int, end: int) -> m.LossConfigValue:
    values = _scan(buf, start, end, _T["LossConfigValue"])
    value: m.LossConfigValue = values.get("number", values.get("text"))
    return value


def _datum(buf: Buf, start: int, end: int) -> m.Datum:
    values = _scan(buf, start, end, _T["Datum"])
    return m.Datum(
        model_input=_many(_chunk, buf, values, "model_input"),
        loss_fn_inputs=_message_map(_tensor, buf, values, "loss_fn_inputs"),
        model_input_spans=_many(_provenance_span, buf, values, "model_input_spans"),
        loss_fn_input_spans=_many(_provenance_span, buf, values, "loss_fn_input_spans"),
    )


def _chunk(buf: Buf, start: int, end: int) -> m.Chunk:
    member, spans = _oneof_member(buf, start, end, _T["Chunk"])
    return cast(m.Chunk, _sub(_CHUNK_DECODERS[member], buf, spans, member))


def _encoded_text(buf: Buf, start: int, end: int) -> m.EncodedTextChunk:
    plan = _T["EncodedTextChunk"]
    return m.EncodedTextChunk(tokens=_numbers(buf, _scan(buf, start, end, plan), plan, "tokens"))


def _image(buf: Buf, start: int, end: int) -> m.ImageChunk:
    values = _scan(buf, start, end, _T["ImageChunk"])
    data = values.get("data", (0, 0))
    return m.ImageChunk(
        data=bytes(buf[data[0] : data[1]]),
        format=values.get("format", ""),
        expected_tokens=values.get("expected_tokens"),
        override_dimensions=_one(_image_dimensions, buf, values, "override_dimensions"),
    )


def _image_dimensions(buf: Buf, start: int, end: int) -> m.ImageDimensions:
    return m.ImageDimensions(**_scan(buf, start, end, _T["ImageDimensions"]))


def _dmel(buf: Buf, start: int, end: int) -> m.DmelChunk:
    a, b = _scan(buf, start, end, _T["DmelChunk"]).get("dmel", (0, 0))
    return m.DmelChunk(dmel=bytes(buf[a:b]))


_CHUNK_DECODERS: dict[str, Decoder] = {
    "encoded_text": _encoded_text,
    "image": _image,
    "dmel": _dmel,
}


def _provenance_span(buf: Buf, start: int, end: int) -> m.ProvenanceSpan:
    member, spans = _oneof_member(buf, start, end, _T["ProvenanceSpan"])
    decoder = _prompt_run if member == "prompt_tokens" else _sampled_run
    return cast(m.ProvenanceSpan, _sub(decoder, buf, spans, member))


def _prompt_run(buf: Buf, start: int, end: int) -> m.PromptProvenanceSpan:
    return m.PromptProvenanceSpan(**_scan(buf, start, end, _T["ProvenanceRun"]))


def _sampled_run(buf: Buf, start: int, end: int) -> m.SampledProvenanceSpan:
    return m.SampledProvenanceSpan(**_scan(buf, start, end, _T["ProvenanceRun"]))


# --- sampling --------------------------------------------------------------------------------


def _sample_response(buf: Buf, start: int, end: int) -> m.SampleResponse:
    plan = _T["SampleResponse"]
    values = _scan(buf, start, end, plan)
    return m.SampleResponse(
        sequences=_many(_sampled_sequence, buf, values, "sequences"),
        prompt_logprobs=_optional_numbers(buf, values, plan, "prompt_logprobs"),
        topk_prompt_logprobs=_one(_topk, buf, values, "topk_prompt_logprobs"),
        prompt_cache_hit_tokens=values.get("prompt_cache_hit_tokens", 0),
        target_prompt_logprobs=_one(_tensor, buf, values, "target_prompt_logprobs"),
        prompt_alt_tokens=_one(_prompt_alt_tokens, buf, values, "prompt_alt_tokens"),
    )


def _sampled_sequence(buf: Buf, start: int, end: int) -> m.SampledSequence:
    plan = _T["SampledSequence"]
    values = _scan(buf, start, end, plan)
    reason = values.get("stop_reason", 0)
    if reason not in _STOP_REASONS:
        raise ProtobufDecodeError(f"unknown StopReason value {reason}", "stop_reason")
    return m.SampledSequence(
        tokens=_numbers(buf, values, plan, "tokens"),
        stop_reason=_STOP_REASONS[reason],
        logprobs=_optional_numbers(buf, values, plan, "logprobs"),
        topk_sampled_logprobs=_one(_topk, buf, values, "topk_sampled_logprobs"),
    )


_STOP_REASONS = {reason.value: reason for reason in m.StopReason}


def _topk(buf: Buf, start: int, end: int) -> m.TopkLogprobs:
    plan = _T["TopkLogprobs"]
    values = _scan(buf, start, end, plan)
    topk = m.TopkLogprobs(
        token_ids=_numbers(buf, values, plan, "token_ids"),
        logprobs=_numbers(buf, values, plan, "logprobs"),
        k=values.get("k", 0),
        length=values.get("length", 0),
    )
    checks.check_topk(topk, ProtobufDecodeError)
    return topk


def _prompt_alt_tokens(buf: Buf, start: int, end: int) -> m.PromptAltTokens:
    values = _scan(buf, start, end, _T["PromptAltTokens"])
    return m.PromptAltTokens(
        tokens=_one(_tensor, buf, values, "tokens"),
        logprobs=_one(_tensor, buf, values, "logprobs"),
    )


def _sampling_params(buf: Buf, start: int, end: int) -> m.SamplingParams:
    values = _scan(buf, start, end, _T["SamplingParams"])
    strings = _one(_stop_strings, buf, values, "stop_strs")
    tokens = _one(_stop_tokens, buf, values, "stop_tokens")
    values.pop("stop_strs", None)
    values.pop("stop_tokens", None)
    return m.SamplingParams(**values, stop=strings or tokens)


def _stop_strings(buf: Buf, start: int, end: int) -> m.StopStrings:
    return m.StopStrings(**_scan(buf, start, end, _T["StopStrings"]))


def _stop_tokens(buf: Buf, start: int, end: int) -> m.StopTokens:
    return m.StopTokens(**_scan(buf, start, end, _T["StopTokens"]))


_DECODERS: dict[type[Any], Decoder] = {
    m.ArrayRecord: _array_record,
    m.BatchedTensor: _batched_tensor,
    m.Datum: _datum,
    m.DmelChunk: _dmel,
    m.EncodedTextChunk: _encoded_text,
    m.ForwardBackwardOutput: _forward_backward_output,
    m.ForwardBackwardRequest: _forward_backward_request,
    m.ImageChunk: _image,
    m.ImageDimensions: _image_dimensions,
    m.PromptAltTokens: _prompt_alt_tokens,
    m.PromptProvenanceSpan: _prompt_run,
    m.SampledProvenanceSpan: _sampled_run,
    m.SampleResponse: _sample_response,
    m.SampledSequence: _sampled_sequence,
    m.SamplingParams: _sampling_params,
    m.StopStrings: _stop_strings,
    m.StopTokens: _stop_tokens,
    m.Tensor: _tensor,
    m.TopkLogprobs: _topk,
}
