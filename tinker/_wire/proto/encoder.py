"""Messages of `tinker_public.proto` -> bytes, canonically.

Output is what a proto3 runtime writes with deterministic serialization: fields in number
order, scalars at their default value left out (except proto3 `optional` and oneof members,
which are written when set), repeated numbers packed, map entries sorted by key with both key
and value written. Numeric payloads go from their numpy buffers straight into the one final
`bytes` (a single copy, no Python lists). The framing around the datum tensors depends only on
their sizes, dtypes and shapes, so it is built once per distinct combination and reused.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Union, cast

import numpy as np
import numpy.typing as npt

from tinker._wire.proto import checks
from tinker._wire.proto.errors import ProtobufEncodeError
from tinker._wire.proto.messages import (
    ArrayRecord,
    BatchedTensor,
    Datum,
    DmelChunk,
    DType,
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
    StopStrings,
    StopTokens,
    Tensor,
    TopkLogprobs,
    wire_dtype,
)
from tinker._wire.proto.wire import I32, I64, LEN, VARINT, pack_double, pack_float, tag, varint

__all__ = ["encode"]

Array = npt.NDArray[Any]
Part = Union[bytes, Array]

_INT32 = np.dtype("<i4")
_INT64 = np.dtype("<i8")
_FLOAT32 = np.dtype("<f4")
# Field keys by field number, per wire type.
_K_LEN = [tag(number, LEN) for number in range(8)]
_K_VAR = [tag(number, VARINT) for number in range(8)]
_K_I64 = [tag(number, I64) for number in range(8)]
_K_I32 = [tag(number, I32) for number in range(8)]

_Error = ProtobufEncodeError
_RANGES = {
    "int32": (-(1 << 31), (1 << 31) - 1),
    "uint32": (0, (1 << 32) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
    "uint64": (0, (1 << 64) - 1),
}


def encode(message: Message) -> bytes:
    """The serialized bytes of `message`; ProtobufEncodeError names a value that cannot be
    written (wrong dtype, out of range, sizes that contradict shapes)."""
    encoder = _ENCODERS.get(type(message))
    if encoder is None:
        if type(message) is SparseCsr:
            raise TypeError("a SparseCsr is encoded inside its Tensor, which gives its dtype")
        raise TypeError(f"{type(message).__name__} is not a message of tinker_public.proto")
    try:
        out = encoder(message)
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

    def integer(self, number: int, value: int, kind: str, name: str) -> None:
        """A varint field of proto type `kind` (int32, uint32, int64, uint64), checked."""
        low, high = _RANGES[kind]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ProtobufEncodeError(f"expected an integer, got {type(value).__name__}", name)
        if not low <= value <= high:
            raise ProtobufEncodeError(f"{value} is outside the {kind} range", name)
        self.raw(_K_VAR[number] + varint(int(value)))

    def string(self, number: int, text: str, name: str) -> None:
        self.payload(number, *_utf8(text, name))

    def double(self, number: int, value: float, name: str) -> None:
        self.raw(_K_I64[number] + pack_double(_real(value, name)))


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


def _element(dtype: DType) -> np.dtype[Any]:
    """The numpy dtype of a valid element type; ProtobufEncodeError for any other value."""
    return wire_dtype(checks.check_dtype(dtype, _Error))


def _packed(number: int, values: Iterable[int], kind: str, name: str) -> bytes:
    """A packed repeated varint field (nothing when empty)."""
    low, high = _RANGES[kind]
    body = bytearray()
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ProtobufEncodeError(f"expected integers, got {type(value).__name__}", name)
        if not low <= value <= high:
            raise ProtobufEncodeError(f"{value} is outside the {kind} range", name)
        body += varint(int(value))
    return _K_LEN[number] + varint(len(body)) + body if body else b""


def _each(items: Iterable[Any], name: str, encode_one: Callable[[Any], _Out]) -> list[_Out]:
    """Encode the elements of a repeated field, locating errors at `name[index]`."""
    encoded = []
    for index, item in enumerate(items):
        try:
            encoded.append(encode_one(item))
        except ProtobufEncodeError as exc:
            raise exc.within(f"[{index}]").within(name) from None
    return encoded


def _map(
    entries: Mapping[str, Any], name: str, write_value: Callable[[_Out, Any], None]
) -> list[_Out]:
    """Map entries sorted by key, each with its key (field 1) and value (field 2)."""
    encoded = []
    for key in sorted(entries):
        entry = _Out()
        entry.string(1, key, name)
        try:
            write_value(entry, entries[key])
        except ProtobufEncodeError as exc:
            raise exc.within(f"[{key!r}]").within(name) from None
        encoded.append(entry)
    return encoded


# --- tensors ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _dense_tensor_frame(nbytes: int, dtype: DType, shape: tuple[int, ...]) -> tuple[bytes, bytes]:
    """What a dense Tensor of `nbytes` writes before its values and after them."""
    element = _element(dtype)
    checks.check_shape(shape, nbytes // element.itemsize, ProtobufEncodeError, "dense")
    return _K_LEN[1] + varint(nbytes), _dtype_and_shape(dtype, shape)


def _dtype_and_shape(dtype: DType, shape: tuple[int, ...]) -> bytes:
    return _K_VAR[3] + varint(dtype) + _packed(4, shape, "int64", "shape")


def _shape(value: Any) -> tuple[int, ...]:
    return value if type(value) is tuple else tuple(value)


def _tensor(tensor: Tensor) -> _Out:
    out = _Out()
    shape = _shape(tensor.shape)
    element = _element(tensor.dtype)
    if tensor.sparse_csr is not None:
        out.message(2, _sparse_csr(tensor, element, shape))
    elif tensor.dense is not None:
        dense = _wire_array(tensor.dense, element, "dense")
        head, tail = _dense_tensor_frame(dense.nbytes, tensor.dtype, shape)
        out.parts = [head, dense, tail] if dense.nbytes else [head, tail]
        out.size = len(head) + dense.nbytes + len(tail)
        return out
    else:
        checks.check_shape(shape, 0, _Error, "shape")
    out.raw(_dtype_and_shape(tensor.dtype, shape))
    return out


def _sparse_csr(tensor: Tensor, element: np.dtype[Any], shape: tuple[int, ...]) -> _Out:
    """The sparse_csr member of a Tensor, checked against the Tensor's shape."""
    csr = tensor.sparse_csr
    assert csr is not None
    arrays = (
        _wire_array(csr.values, element, "sparse_csr.values"),
        _wire_array(csr.crow_indices, _INT64, "sparse_csr.crow_indices"),
        _wire_array(csr.col_indices, _INT64, "sparse_csr.col_indices"),
    )
    written = SparseCsr(values=arrays[0], crow_indices=arrays[1], col_indices=arrays[2])
    checks.check_tensor(
        Tensor(dtype=tensor.dtype, shape=shape, dense=tensor.dense, sparse_csr=written), _Error
    )
    out = _Out()
    for number, array in enumerate(arrays, 1):
        if array.nbytes:
            out.payload(number, array, array.nbytes)
    return out


def _batched_tensor(batched: BatchedTensor) -> _Out:
    element = _element(batched.dtype)
    data = _wire_array(batched.data, element, "data")
    offsets = _wire_array(batched.offsets, _INT64, "offsets")
    trailing = _shape(batched.trailing_shape)
    checks.check_batched_tensor(
        BatchedTensor(data=data, offsets=offsets, dtype=batched.dtype, trailing_shape=trailing),
        ProtobufEncodeError,
    )
    out = _Out()
    if data.nbytes:
        out.payload(1, data, data.nbytes)
    if offsets.nbytes:
        out.payload(2, offsets, offsets.nbytes)
    out.raw(_dtype_and_shape(batched.dtype, trailing))
    return out


def _array_record(record: ArrayRecord) -> _Out:
    checks.check_array_record(record, ProtobufEncodeError)
    out = _Out()
    if record.type_tag:
        out.string(1, record.type_tag, "type_tag")
    for entry in _map(record.fields, "fields", lambda e, v: e.message(2, _batched_tensor(v))):
        out.message(2, entry)
    if record.num_datums:
        out.integer(3, record.num_datums, "int64", "num_datums")
    return out


def _forward_backward_output(output: ForwardBackwardOutput) -> _Out:
    out = _Out()
    if output.loss_fn_output_type:
        out.string(1, output.loss_fn_output_type, "loss_fn_output_type")
    for record in _each(output.loss_fn_outputs, "loss_fn_outputs", _array_record):
        out.message(2, record)
    for entry in _map(output.metrics, "metrics", lambda e, v: e.double(2, v, "value")):
        out.message(3, entry)
    return out


# --- forward_backward request ----------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _text_chunk_frame(nbytes: int) -> bytes:
    """What a Datum writes before the tokens of a text chunk: the model_input field, the
    Chunk's encoded_text member, the EncodedTextChunk's tokens field."""
    tokens = _K_LEN[1] + varint(nbytes) if nbytes else b""
    text_size = len(tokens) + nbytes
    member = _K_LEN[1] + varint(text_size)
    chunk_size = len(member) + text_size
    return _K_LEN[1] + varint(chunk_size) + member + tokens


@functools.lru_cache(maxsize=1024)
def _dense_input_frame(
    key: str, nbytes: int, dtype: DType, shape: tuple[int, ...]
) -> tuple[bytes, bytes]:
    """What a Datum writes around the values of one dense loss_fn_inputs entry."""
    head, tail = _dense_tensor_frame(nbytes, dtype, shape)
    tensor_size = len(head) + nbytes + len(tail)
    key_bytes, key_size = _utf8(key, "key")
    entry = _K_LEN[1] + varint(key_size) + key_bytes + _K_LEN[2] + varint(tensor_size)
    return _K_LEN[2] + varint(len(entry) + tensor_size) + entry + head, tail


def _datum(datum: Datum) -> _Out:
    """A Datum; text chunks and dense inputs (the bulk of a batch) use cached framing."""
    out = _Out()
    parts = out.parts
    size = 0
    for index, chunk in enumerate(datum.model_input):
        try:
            if type(chunk) is not EncodedTextChunk:
                size += _extend(parts, 1, _chunk(chunk))
                continue
            tokens = _wire_array(chunk.tokens, _INT32, "encoded_text.tokens")
        except ProtobufEncodeError as exc:
            raise exc.within(f"[{index}]").within("model_input") from None
        head = _text_chunk_frame(tokens.nbytes)
        parts.append(head)
        if tokens.nbytes:
            parts.append(tokens)
        size += len(head) + tokens.nbytes
    inputs = datum.loss_fn_inputs
    for key in sorted(inputs) if len(inputs) > 1 else inputs:
        tensor = inputs[key]
        try:
            if tensor.dense is None or tensor.sparse_csr is not None:
                entry = _Out()
                entry.string(1, key, "key")
                entry.message(2, _tensor(tensor))
                size += _extend(parts, 2, entry)
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
    out.size = size
    if datum.model_input_spans or datum.loss_fn_input_spans:
        for number, name in ((3, "model_input_spans"), (4, "loss_fn_input_spans")):
            for span in _each(getattr(datum, name), name, _provenance_span):
                out.message(number, span)
    return out


def _chunk(chunk: Any) -> _Out:
    """A Chunk: the oneof member that matches the chunk's class."""
    member = _CHUNK_MEMBERS.get(type(chunk))
    if member is None:
        raise ProtobufEncodeError(f"{type(chunk).__name__} is not a chunk message")
    number, name, encode_member = member
    out = _Out()
    try:
        out.message(number, encode_member(chunk))
    except ProtobufEncodeError as exc:
        raise exc.within(name) from None
    return out


def _encoded_text(chunk: EncodedTextChunk) -> _Out:
    tokens = _wire_array(chunk.tokens, _INT32, "tokens")
    out = _Out()
    if tokens.nbytes:
        out.payload(1, tokens, tokens.nbytes)
    return out


def _image(image: ImageChunk) -> _Out:
    out = _Out()
    if image.data:
        out.payload(1, bytes(image.data), len(image.data))
    if image.format:
        out.string(2, image.format, "format")
    if image.expected_tokens is not None:
        out.integer(3, image.expected_tokens, "int32", "expected_tokens")
    if image.override_dimensions is not None:
        try:
            out.message(4, _image_dimensions(image.override_dimensions))
        except ProtobufEncodeError as exc:
            raise exc.within("override_dimensions") from None
    return out


def _image_dimensions(dimensions: ImageDimensions) -> _Out:
    out = _Out()
    if dimensions.width:
        out.integer(1, dimensions.width, "uint32", "width")
    if dimensions.height:
        out.integer(2, dimensions.height, "uint32", "height")
    return out


def _dmel(chunk: DmelChunk) -> _Out:
    out = _Out()
    if chunk.dmel:
        out.payload(1, bytes(chunk.dmel), len(chunk.dmel))
    return out


_CHUNK_MEMBERS: dict[type[Any], tuple[int, str, Callable[[Any], _Out]]] = {
    EncodedTextChunk: (1, "encoded_text", _encoded_text),
    ImageChunk: (2, "image", _image),
    DmelChunk: (3, "dmel", _dmel),
}


def _provenance_span(span: ProvenanceSpan) -> _Out:
    if type(span) is PromptProvenanceSpan:
        number, name = 1, "prompt_tokens"
    elif type(span) is SampledProvenanceSpan:
        number, name = 2, "sampled_tokens"
    else:
        raise ProtobufEncodeError(f"{type(span).__name__} is not a provenance span message")
    out = _Out()
    try:
        out.message(number, _run(span))
    except ProtobufEncodeError as exc:
        raise exc.within(name) from None
    return out


def _run(span: ProvenanceSpan) -> _Out:
    out = _Out()
    if span.sequence_id:
        out.string(1, span.sequence_id, "sequence_id")
    if span.offset:
        out.integer(2, span.offset, "int64", "offset")
    if span.length:
        out.integer(3, span.length, "int64", "length")
    return out


def _config_value(entry: _Out, value: LossConfigValue) -> None:
    """Write a LossConfigValue as the value of a map entry: number, text, or neither."""
    inner = _Out()
    if isinstance(value, str):
        inner.string(2, value, "text")
    elif value is not None:
        inner.double(1, value, "number")
    entry.message(2, inner)


def _forward_backward_request(request: ForwardBackwardRequest) -> _Out:
    out = _Out()
    if request.model_id:
        out.string(1, request.model_id, "model_id")
    if request.seq_id:
        out.integer(2, request.seq_id, "int32", "seq_id")
    for datum in _each(request.data, "data", _datum):
        out.message(3, datum)
    if request.loss_fn:
        out.string(4, request.loss_fn, "loss_fn")
    config = _map(request.loss_fn_config, "loss_fn_config", lambda e, v: e.double(2, v, "value"))
    for entry in config:
        out.message(5, entry)
    if request.forward_only:
        out.raw(_K_VAR[6] + b"\x01")
    for entry in _map(request.loss_fn_config_v2, "loss_fn_config_v2", _config_value):
        out.message(7, entry)
    return out


# --- sampling --------------------------------------------------------------------------------


def _optional_array(out: _Out, number: int, array: Any, dtype: np.dtype[Any], name: str) -> None:
    """A proto3 `optional bytes` field of numbers: written whenever it is not None."""
    if array is not None:
        values = _wire_array(array, dtype, name)
        out.payload(number, values, values.nbytes)


def _nested(
    out: _Out, number: int, value: Any, encode_value: Callable[[Any], _Out], name: str
) -> None:
    """A singular message field: written whenever it is not None."""
    if value is not None:
        try:
            out.message(number, encode_value(value))
        except ProtobufEncodeError as exc:
            raise exc.within(name) from None


def _topk(topk: TopkLogprobs) -> _Out:
    token_ids = _wire_array(topk.token_ids, _INT32, "token_ids")
    logprobs = _wire_array(topk.logprobs, _FLOAT32, "logprobs")
    checks.check_topk(
        TopkLogprobs(token_ids=token_ids, logprobs=logprobs, k=topk.k, length=topk.length),
        ProtobufEncodeError,
    )
    out = _Out()
    if token_ids.nbytes:
        out.payload(1, token_ids, token_ids.nbytes)
    if logprobs.nbytes:
        out.payload(2, logprobs, logprobs.nbytes)
    if topk.k:
        out.integer(3, topk.k, "uint32", "k")
    if topk.length:
        out.integer(4, topk.length, "uint32", "length")
    return out


def _sampled_sequence(sequence: SampledSequence) -> _Out:
    out = _Out()
    if sequence.stop_reason:
        out.integer(1, int(sequence.stop_reason), "int32", "stop_reason")
    tokens = _wire_array(sequence.tokens, _INT32, "tokens")
    if tokens.nbytes:
        out.payload(2, tokens, tokens.nbytes)
    _optional_array(out, 3, sequence.logprobs, _FLOAT32, "logprobs")
    _nested(out, 4, sequence.topk_sampled_logprobs, _topk, "topk_sampled_logprobs")
    return out


def _prompt_alt_tokens(alt: PromptAltTokens) -> _Out:
    out = _Out()
    _nested(out, 1, alt.tokens, _tensor, "tokens")
    _nested(out, 2, alt.logprobs, _tensor, "logprobs")
    return out


def _sample_response(response: SampleResponse) -> _Out:
    out = _Out()
    for sequence in _each(response.sequences, "sequences", _sampled_sequence):
        out.message(1, sequence)
    _optional_array(out, 2, response.prompt_logprobs, _FLOAT32, "prompt_logprobs")
    _nested(out, 3, response.topk_prompt_logprobs, _topk, "topk_prompt_logprobs")
    if response.prompt_cache_hit_tokens:
        out.integer(4, response.prompt_cache_hit_tokens, "int32", "prompt_cache_hit_tokens")
    _nested(out, 5, response.target_prompt_logprobs, _tensor, "target_prompt_logprobs")
    _nested(out, 6, response.prompt_alt_tokens, _prompt_alt_tokens, "prompt_alt_tokens")
    return out


def _float32_field(out: _Out, number: int, value: float, name: str) -> None:
    number_value = _real(value, name)
    try:
        out.raw(_K_I32[number] + pack_float(number_value))
    except OverflowError:
        raise ProtobufEncodeError(f"{number_value} is outside the float32 range", name) from None


def _sampling_params(params: SamplingParams) -> _Out:
    out = _Out()
    if params.max_tokens is not None:
        out.integer(1, params.max_tokens, "int32", "max_tokens")
    if params.seed is not None:
        out.integer(2, params.seed, "uint64", "seed")
    if params.temperature is not None:
        _float32_field(out, 3, params.temperature, "temperature")
    if params.top_k is not None:
        out.integer(4, params.top_k, "int32", "top_k")
    if params.top_p is not None:
        _float32_field(out, 5, params.top_p, "top_p")
    if isinstance(params.stop, StopStrings):
        _nested(out, 6, params.stop, _stop_strings, "stop_strs")
    elif isinstance(params.stop, StopTokens):
        _nested(out, 7, params.stop, _stop_tokens, "stop_tokens")
    elif params.stop is not None:
        raise ProtobufEncodeError(
            f"expected StopStrings or StopTokens, got {type(params.stop).__name__}", "stop"
        )
    return out


def _stop_strings(stop: StopStrings) -> _Out:
    out = _Out()
    for index, value in enumerate(stop.values):
        out.string(1, value, f"values[{index}]")
    return out


def _stop_tokens(stop: StopTokens) -> _Out:
    out = _Out()
    out.raw(_packed(1, stop.values, "int32", "values"))
    return out


_ENCODERS: dict[type[Any], Callable[[Any], _Out]] = {
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
    PromptProvenanceSpan: _run,
    SampledProvenanceSpan: _run,
    SampleResponse: _sample_response,
    SampledSequence: _sampled_sequence,
    SamplingParams: _sampling_params,
    StopStrings: _stop_strings,
    StopTokens: _stop_tokens,
    Tensor: _tensor,
    TopkLogprobs: _topk,
}
