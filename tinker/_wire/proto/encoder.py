"""Messages of `tinker_public.proto` -> bytes, canonically.

Output is what a proto3 runtime writes with deterministic serialization: fields in number
order, scalars at their default value left out (except proto3 `optional` and oneof members,
which are written when set), repeated numbers packed, map entries sorted by key with both key
and value written. Numeric payloads go from their numpy buffers straight into the one final
`bytes` (a single copy, no Python lists). The framing around a datum's token chunks and dense
tensors depends only on their sizes, dtypes and shapes, so it is built once per distinct
combination and reused.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from types import SimpleNamespace
from typing import Any, Union, cast

import numpy as np
import numpy.typing as npt

from tinker._wire.proto import checks
from tinker._wire.proto import messages as m
from tinker._wire.proto.errors import ProtobufEncodeError
from tinker._wire.proto.schema import SCHEMA, Field, Kind, Label, Table
from tinker._wire.proto.wire import I32, I64, LEN, VARINT, pack_double, pack_float, tag, varint

__all__ = ["encode"]

Array = npt.NDArray[Any]
Part = Union[bytes, Array]
_Error = ProtobufEncodeError

_INT32 = np.dtype("<i4")
_INT64 = np.dtype("<i8")
_DTYPES = {name: np.dtype(name) for name in ("<i4", "<i8", "<f4")}
_RANGES = {
    Kind.INT32: (-(1 << 31), (1 << 31) - 1),
    Kind.ENUM: (-(1 << 31), (1 << 31) - 1),
    Kind.UINT32: (0, (1 << 32) - 1),
    Kind.INT64: (-(1 << 63), (1 << 63) - 1),
    Kind.UINT64: (0, (1 << 64) - 1),
}
# Field keys by field number, per wire type.
_K_LEN = [tag(number, LEN) for number in range(8)]
_K_VAR = [tag(number, VARINT) for number in range(8)]
_K_I64 = [tag(number, I64) for number in range(8)]
_K_I32 = [tag(number, I32) for number in range(8)]
_T = SCHEMA


def encode(message: m.Message) -> bytes:
    """The serialized bytes of `message`; ProtobufEncodeError names a value that cannot be
    written (wrong dtype, out of range, sizes that contradict shapes)."""
    if type(message) is m.SparseCsr:
        raise TypeError("a SparseCsr is encoded inside its Tensor, which gives its dtype")
    if type(message) not in _ENCODERS:
        raise TypeError(f"{type(message).__name__} is not a message of tinker_public.proto")
    try:
        out = _message(message)
    except ProtobufEncodeError as exc:
        raise exc.within(type(message).__name__) from None
    return b"".join(cast("list[bytes]", out.parts))  # arrays are buffers too


# --- building blocks -------------------------------------------------------------------------


class _Out:
    """The parts of one message being written, and their total size in bytes."""

    __slots__ = ("parts", "size")

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self.size = 0

    def raw(self, chunk: bytes) -> None:
        self.parts.append(chunk)
        self.size += len(chunk)

    def payload(self, number: int, data: Part, nbytes: int) -> None:
        """A length-delimited field holding `data` (bytes or a contiguous array)."""
        self.raw(_K_LEN[number] + varint(nbytes))
        if nbytes:
            self.parts.append(data)
            self.size += nbytes

    def message(self, number: int, child: _Out) -> None:
        self.size += _extend(self.parts, number, child)

    def integer(self, number: int, value: int, kind: Kind, name: str) -> None:
        """A varint field of an integer kind, range-checked."""
        self.raw(_K_VAR[number] + varint(_integer(value, kind, name)))

    def string(self, number: int, text: str, name: str) -> None:
        self.payload(number, *_utf8(text, name))


def _integer(value: Any, kind: Kind, name: str) -> int:
    """`value` as an int within the range of `kind`."""
    low, high = _RANGES[kind]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ProtobufEncodeError(f"expected an integer, got {type(value).__name__}", name)
    if not low <= value <= high:
        raise ProtobufEncodeError(f"{value} is outside the {kind.value} range", name)
    return int(value)


def _extend(parts: list[Part], number: int, child: _Out) -> int:
    """Append `child` to `parts` as the message field `number`; the bytes added."""
    head = _K_LEN[number] + varint(child.size)
    parts.append(head)
    parts += child.parts
    return len(head) + child.size


def _utf8(text: str, name: str) -> tuple[bytes, int]:
    if not isinstance(text, str):
        raise ProtobufEncodeError(f"expected a str, got {type(text).__name__}", name)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ProtobufEncodeError(f"not encodable as UTF-8: {exc.reason}", name) from None
    return data, len(data)


def _real(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ProtobufEncodeError(f"expected a number, got {type(value).__name__}", name)
    return float(value)


def _wire_array(array: Any, dtype: np.dtype[Any], name: str) -> Array:
    """`array` as a C-contiguous little-endian array of `dtype` (the same object when it
    already is one); a different kind or width of number is an error, never a cast."""
    if type(array) is np.ndarray and array.dtype is dtype and array.flags.c_contiguous:
        return array
    if not isinstance(array, np.ndarray):
        raise ProtobufEncodeError(f"expected a numpy array, got {type(array).__name__}", name)
    if array.dtype.kind != dtype.kind or array.dtype.itemsize != dtype.itemsize:
        raise ProtobufEncodeError(f"{array.dtype} values where {dtype} is expected", name)
    return np.ascontiguousarray(array, dtype)


def _element(dtype: m.DType) -> np.dtype[Any]:
    """The numpy dtype of a valid element type; ProtobufEncodeError for any other value."""
    element = _ELEMENTS.get(dtype)
    return m.wire_dtype(checks.check_dtype(dtype, _Error)) if element is None else element


_ELEMENTS: dict[int, np.dtype[Any]] = {
    dtype: m.wire_dtype(dtype) for dtype in m.DType if dtype != m.DType.UNSPECIFIED
}


def _packed(number: int, values: Iterable[int], kind: Kind, name: str) -> bytes:
    """A packed repeated varint field (nothing when empty)."""
    data = b"".join(varint(_integer(value, kind, name)) for value in values)
    return _K_LEN[number] + varint(len(data)) + data if data else b""


def _nested(
    encode_one: Callable[[Any], _Out], value: Any, name: str, index: int | None = None
) -> _Out:
    """Encode a nested message, locating its errors under `name` (and `[index]` for an
    element of a repeated field)."""
    try:
        return encode_one(value)
    except ProtobufEncodeError as exc:
        raise (exc if index is None else exc.within(f"[{index}]")).within(name) from None


# --- fields from the schema ------------------------------------------------------------------


Writer = Callable[["_Out", Field, Any], None]


def _fields(message: Any, table: Table, special: Mapping[str, Writer] | None = None) -> _Out:
    """Write `message`'s fields in number order as the schema says, `special` writers
    (by field name) taking the place of the generic one for their field."""
    out = _Out()
    for field in table.fields:
        writer = special.get(field.name) if special else None
        if writer is not None:
            writer(out, field, message)
        else:
            _field(out, field, getattr(message, field.name))
    return out


def _field(out: _Out, field: Field, value: Any) -> None:
    number, name, kind = field.number, field.name, field.kind
    if field.label is Label.REPEATED:
        for index, item in enumerate(value):
            out.message(number, _nested(_message, item, name, index))
        return
    if kind is Kind.DOUBLE_MAP:
        _map(out, field, value, lambda entry, item, where: entry.raw(_double(_VALUE, item, where)))
        return
    if kind is Kind.MESSAGE_MAP:
        _map(out, field, value, _write_message_value)
        return
    if value is None or (field.label is Label.IMPLICIT and _is_default(value)):
        return
    if kind is Kind.STRING:
        out.string(number, value, name)
    elif kind is Kind.BYTES:
        if field.array:
            value = _wire_array(value, _DTYPES[field.array], name)
        elif not isinstance(value, np.ndarray):  # raw bytes; arrays were made wire-ready
            value = bytes(value)
        out.payload(number, value, value.nbytes if isinstance(value, np.ndarray) else len(value))
    elif kind in _RANGES:
        out.integer(number, value, kind, name)
    elif kind is Kind.BOOL:
        out.raw(_K_VAR[number] + b"\x01")
    elif kind is Kind.DOUBLE:
        out.raw(_double(number, value, name))
    elif kind is Kind.FLOAT:
        try:
            out.raw(_K_I32[number] + pack_float(_real(value, name)))
        except OverflowError:
            raise ProtobufEncodeError(f"{value} is outside the float32 range", name) from None
    elif kind is Kind.MESSAGE:
        out.message(number, _nested(_message, value, name))
    elif kind is Kind.STRING_LIST:
        for index, text in enumerate(value):
            out.string(number, text, f"{name}[{index}]")
    else:
        out.raw(_packed(number, value, _PACKED[kind], name))


_PACKED = {Kind.PACKED_INT32: Kind.INT32, Kind.PACKED_INT64: Kind.INT64}
_KEY, _VALUE = (SCHEMA["MapEntry"].by_name[name].number for name in ("key", "value"))


def _map(
    out: _Out, field: Field, mapping: Mapping[str, Any], write: Callable[[_Out, Any, str], None]
) -> None:
    """A map field: one entry per key, sorted, each with its key and value written."""
    for key in sorted(mapping):
        entry = _Out()
        entry.string(_KEY, key, field.name)
        write(entry, mapping[key], f"{field.name}[{key!r}]")
        out.message(field.number, entry)


def _write_message_value(entry: _Out, value: Any, where: str) -> None:
    entry.message(_VALUE, _nested(_message, value, where))


def _double(number: int, value: Any, name: str) -> bytes:
    return _K_I64[number] + pack_double(_real(value, name))


def _is_default(value: Any) -> bool:
    """A proto3 implicit-presence value at its default (0, "", b"", False, empty array)."""
    if isinstance(value, np.ndarray):
        return value.size == 0
    return not value


def _message(message: Any) -> _Out:
    encoder = _ENCODERS.get(type(message))
    if encoder is None:
        raise ProtobufEncodeError(f"{type(message).__name__} is not a message of the schema")
    return encoder(message)


def _oneof(table: Table, member: str, value: Any) -> SimpleNamespace:
    """A view of a oneof-only message with `member` set to `value` (the others unset)."""
    return SimpleNamespace(**{name: value if name == member else None for name in table.by_name})


# --- tensors ---------------------------------------------------------------------------------

_TENSOR = _T["Tensor"].by_name
_DENSE, _DTYPE, _SHAPE = (_TENSOR[n].number for n in ("dense", "dtype", "shape"))


@functools.lru_cache(maxsize=1024)
def _dense_tensor_frame(nbytes: int, dtype: m.DType, shape: tuple[int, ...]) -> tuple[bytes, bytes]:
    """What a dense Tensor of `nbytes` writes before its values and after them."""
    element = _element(dtype)
    checks.check_shape(shape, nbytes // element.itemsize, _Error, "dense")
    return _K_LEN[_DENSE] + varint(nbytes), _dtype_and_shape(dtype, shape)


def _dtype_and_shape(dtype: m.DType, shape: tuple[int, ...]) -> bytes:
    return _K_VAR[_DTYPE] + varint(dtype) + _packed(_SHAPE, shape, Kind.INT64, "shape")


def _shape(value: Any) -> tuple[int, ...]:
    return value if type(value) is tuple else tuple(value)


def _tensor(tensor: m.Tensor) -> _Out:
    shape = _shape(tensor.shape)
    element = _element(tensor.dtype)
    if tensor.sparse_csr is None and tensor.dense is not None:
        out = _Out()
        dense = _wire_array(tensor.dense, element, "dense")
        head, tail = _dense_tensor_frame(dense.nbytes, tensor.dtype, shape)
        out.parts = [head, dense, tail] if dense.nbytes else [head, tail]
        out.size = len(head) + dense.nbytes + len(tail)
        return out
    sparse = None
    if tensor.sparse_csr is not None:
        csr = tensor.sparse_csr
        sparse = m.SparseCsr(
            values=_wire_array(csr.values, element, "sparse_csr.values"),
            crow_indices=_wire_array(csr.crow_indices, _INT64, "sparse_csr.crow_indices"),
            col_indices=_wire_array(csr.col_indices, _INT64, "sparse_csr.col_indices"),
        )
    written = m.Tensor(dtype=tensor.dtype, shape=shape, dense=tensor.dense, sparse_csr=sparse)
    checks.check_tensor(written, _Error)
    return _fields(written, _T["Tensor"])  # its SparseCsr holds wire-ready arrays now


def _batched_tensor(batched: m.BatchedTensor) -> _Out:
    written = m.BatchedTensor(
        data=_wire_array(batched.data, _element(batched.dtype), "data"),
        offsets=_wire_array(batched.offsets, _INT64, "offsets"),
        dtype=batched.dtype,
        trailing_shape=_shape(batched.trailing_shape),
    )
    checks.check_batched_tensor(written, _Error)
    return _fields(written, _T["BatchedTensor"])


def _array_record(record: m.ArrayRecord) -> _Out:
    checks.check_array_record(record, _Error)
    return _fields(record, _T["ArrayRecord"])


# --- forward_backward request ----------------------------------------------------------------

_DATUM = _T["Datum"].by_name
_MODEL_INPUT, _LOSS_FN_INPUTS = _DATUM["model_input"].number, _DATUM["loss_fn_inputs"].number
_ENCODED_TEXT = _T["Chunk"].by_name["encoded_text"].number
_TOKENS = _T["EncodedTextChunk"].by_name["tokens"].number


@functools.lru_cache(maxsize=1024)
def _text_chunk_frame(nbytes: int) -> bytes:
    """What a Datum writes before the tokens of a text chunk: the model_input field, the
    Chunk's encoded_text member, the EncodedTextChunk's tokens field."""
    tokens = _K_LEN[_TOKENS] + varint(nbytes) if nbytes else b""
    text_size = len(tokens) + nbytes
    member = _K_LEN[_ENCODED_TEXT] + varint(text_size)
    chunk_size = len(member) + text_size
    return _K_LEN[_MODEL_INPUT] + varint(chunk_size) + member + tokens


@functools.lru_cache(maxsize=1024)
def _dense_input_frame(
    key: str, nbytes: int, dtype: m.DType, shape: tuple[int, ...]
) -> tuple[bytes, bytes]:
    """What a Datum writes around the values of one dense loss_fn_inputs entry."""
    head, tail = _dense_tensor_frame(nbytes, dtype, shape)
    tensor_size = len(head) + nbytes + len(tail)
    key_bytes, key_size = _utf8(key, "key")
    entry = _K_LEN[_KEY] + varint(key_size) + key_bytes + _K_LEN[_VALUE] + varint(tensor_size)
    return _K_LEN[_LOSS_FN_INPUTS] + varint(len(entry) + tensor_size) + entry + head, tail


def _datum(datum: m.Datum) -> _Out:
    """A Datum; text chunks and dense inputs (the bulk of a batch) use cached framing."""
    out = _Out()
    _write_model_input(out, _DATUM["model_input"], datum)
    _write_loss_fn_inputs(out, _DATUM["loss_fn_inputs"], datum)
    if datum.model_input_spans or datum.loss_fn_input_spans:
        _write_spans(out, _DATUM["model_input_spans"], datum)
        _write_spans(out, _DATUM["loss_fn_input_spans"], datum)
    return out


def _write_model_input(out: _Out, field: Field, datum: m.Datum) -> None:
    parts, size = out.parts, 0
    for index, chunk in enumerate(datum.model_input):
        try:
            if type(chunk) is not m.EncodedTextChunk:
                size += _extend(parts, _MODEL_INPUT, _chunk(chunk))
                continue
            tokens = _wire_array(chunk.tokens, _INT32, "encoded_text.tokens")
        except ProtobufEncodeError as exc:
            raise exc.within(f"[{index}]").within("model_input") from None
        head = _text_chunk_frame(tokens.nbytes)
        parts.append(head)
        if tokens.nbytes:
            parts.append(tokens)
        size += len(head) + tokens.nbytes
    out.size += size


def _write_loss_fn_inputs(out: _Out, field: Field, datum: m.Datum) -> None:
    parts, size = out.parts, 0
    inputs = datum.loss_fn_inputs
    for key in sorted(inputs) if len(inputs) > 1 else inputs:
        tensor = inputs[key]
        try:
            if tensor.dense is None or tensor.sparse_csr is not None:
                entry = _Out()
                entry.string(_KEY, key, "key")
                entry.message(_VALUE, _tensor(tensor))
                size += _extend(parts, _LOSS_FN_INPUTS, entry)
                continue
            dense = _wire_array(tensor.dense, _element(tensor.dtype), "dense")
            head, tail = _dense_input_frame(key, dense.nbytes, tensor.dtype, _shape(tensor.shape))
        except ProtobufEncodeError as exc:
            raise exc.within(f"[{key!r}]").within("loss_fn_inputs") from None
        parts.append(head)
        if dense.nbytes:
            parts.append(dense)
        parts.append(tail)
        size += len(head) + dense.nbytes + len(tail)
    out.size += size


def _write_spans(out: _Out, field: Field, datum: m.Datum) -> None:
    """A list of provenance spans, each wrapped in its ProvenanceSpan oneof."""
    for index, span in enumerate(getattr(datum, field.name)):
        out.message(field.number, _nested(_provenance_span, span, field.name, index))


_CHUNK_MEMBERS = {m.EncodedTextChunk: "encoded_text", m.ImageChunk: "image", m.DmelChunk: "dmel"}
_SPAN_MEMBERS = {m.PromptProvenanceSpan: "prompt_tokens", m.SampledProvenanceSpan: "sampled_tokens"}


def _chunk(chunk: m.Chunk) -> _Out:
    """A Chunk: the oneof member that matches the chunk's class."""
    member = _CHUNK_MEMBERS.get(type(chunk))
    if member is None:
        raise ProtobufEncodeError(f"{type(chunk).__name__} is not a chunk message")
    return _fields(_oneof(_T["Chunk"], member, chunk), _T["Chunk"])


def _provenance_span(span: m.ProvenanceSpan) -> _Out:
    member = _SPAN_MEMBERS.get(type(span))
    if member is None:
        raise ProtobufEncodeError(f"{type(span).__name__} is not a provenance span message")
    return _fields(_oneof(_T["ProvenanceSpan"], member, span), _T["ProvenanceSpan"])


def _loss_config_value(value: m.LossConfigValue) -> _Out:
    table = _T["LossConfigValue"]
    if value is None:
        return _Out()
    return _fields(_oneof(table, "text" if isinstance(value, str) else "number", value), table)


def _forward_backward_request(request: m.ForwardBackwardRequest) -> _Out:
    return _fields(request, _T["ForwardBackwardRequest"], {"loss_fn_config_v2": _write_config_v2})


def _write_config_v2(out: _Out, field: Field, request: m.ForwardBackwardRequest) -> None:
    """loss_fn_config_v2 values are flattened LossConfigValues: a float, a str or None."""
    _map(
        out,
        field,
        request.loss_fn_config_v2,
        lambda entry, item, where: entry.message(_VALUE, _nested(_loss_config_value, item, where)),
    )


# --- sampling --------------------------------------------------------------------------------


def _topk(topk: m.TopkLogprobs) -> _Out:
    table = _T["TopkLogprobs"]
    dtypes = {name: _DTYPES[table.by_name[name].array] for name in ("token_ids", "logprobs")}
    written = m.TopkLogprobs(
        token_ids=_wire_array(topk.token_ids, dtypes["token_ids"], "token_ids"),
        logprobs=_wire_array(topk.logprobs, dtypes["logprobs"], "logprobs"),
        k=topk.k,
        length=topk.length,
    )
    checks.check_topk(written, _Error)
    return _fields(written, table)


def _sampling_params(params: m.SamplingParams) -> _Out:
    table = _T["SamplingParams"]
    stop = params.stop
    if stop is not None and type(stop) not in (m.StopStrings, m.StopTokens):
        raise ProtobufEncodeError(
            f"expected StopStrings or StopTokens, got {type(stop).__name__}", "stop"
        )
    view = SimpleNamespace(
        **{f.name: getattr(params, f.name) for f in table.fields if not f.oneof},
        stop_strs=stop if type(stop) is m.StopStrings else None,
        stop_tokens=stop if type(stop) is m.StopTokens else None,
    )
    return _fields(view, table)


def _generic(table: str) -> Callable[[Any], _Out]:
    return lambda message: _fields(message, _T[table])


_ENCODERS: dict[type[Any], Callable[[Any], _Out]] = {
    m.ArrayRecord: _array_record,
    m.BatchedTensor: _batched_tensor,
    m.Datum: _datum,
    m.DmelChunk: _generic("DmelChunk"),
    m.EncodedTextChunk: _generic("EncodedTextChunk"),
    m.ForwardBackwardOutput: _generic("ForwardBackwardOutput"),
    m.ForwardBackwardRequest: _forward_backward_request,
    m.ImageChunk: _generic("ImageChunk"),
    m.ImageDimensions: _generic("ImageDimensions"),
    m.PromptAltTokens: _generic("PromptAltTokens"),
    m.PromptProvenanceSpan: _generic("ProvenanceRun"),
    m.SampledProvenanceSpan: _generic("ProvenanceRun"),
    m.SampleResponse: _generic("SampleResponse"),
    m.SampledSequence: _generic("SampledSequence"),
    m.SamplingParams: _sampling_params,
    m.SparseCsr: _generic("SparseCsr"),  # inside a Tensor only: `encode` refuses it alone
    m.StopStrings: _generic("StopStrings"),
    m.StopTokens: _generic("StopTokens"),
    m.Tensor: _tensor,
    m.TopkLogprobs: _topk,
}
