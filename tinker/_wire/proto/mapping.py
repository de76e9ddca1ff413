"""`tinker.types` values <-> protobuf bodies: the only module where SDK types meet messages.

Requests: a ForwardBackwardCall (datums, loss, config, model, seq_id, forward_only) <->
ForwardBackwardRequest bytes. Results: types.ForwardBackwardOutput and types.SampleResponse
<-> their messages. Numeric values travel as numpy arrays; result tensors are built with
TensorData.from_numpy. Rules of the protocol: a loss_fn_config number goes to both
config maps, a string only to v2, and v2 wins when decoding; int32 is widened to int64 and
bfloat16 to float32 (bit-exact); a 2-D `target_tokens` or `weights` input travels as CSR when
that is smaller; NaN prompt logprobs read as None; top-k cells holding the sentinel (token 0,
logprob -99999.0) are dropped from the end of a row, and a row starting with one is None.

What the current types cannot hold is not mapped: provenance spans and dmel chunks of
requests, and prompt_cache_hit_tokens, target_prompt_logprobs, prompt_alt_tokens and
per-sequence top-k of sample responses (the messages keep them all).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from tinker import types
from tinker._wire.proto import messages as m
from tinker._wire.proto.call import ForwardBackwardCall
from tinker._wire.proto.checks import batched_datum_count
from tinker._wire.proto.decoder import decode
from tinker._wire.proto.encoder import encode
from tinker._wire.proto.errors import ProtobufDecodeError

__all__ = [
    "ForwardBackwardCall",
    "decode_forward_backward_output",
    "decode_forward_backward_request",
    "decode_sample_response",
    "encode_forward_backward_arrays",
    "encode_forward_backward_output",
    "encode_forward_backward_request",
    "encode_sample_response",
    "stop_reason_message",
    "tensor_array",
    "topk_rows_message",
    "topk_table_message",
]

Array = npt.NDArray[Any]
BytesLike = bytes | bytearray | memoryview

TOPK_SENTINEL_TOKEN = 0
TOPK_SENTINEL_LOGPROB = -99999.0
# A sparse tensor is densified for the current types only up to this many values.
MAX_DENSIFIED_VALUES = 1 << 26

_WIRE_DTYPE = {"int64": m.DType.INT64, "float32": m.DType.FLOAT32}
_NUMPY: dict[str, np.dtype[Any]] = {"int64": np.dtype("<i8"), "float32": np.dtype("<f4")}
_INT32_MAX = (1 << 31) - 1


# --- requests --------------------------------------------------------------------------------


def encode_forward_backward_request(call: ForwardBackwardCall) -> bytes:
    """The ForwardBackwardRequest body of `call`; ValueError names a datum or config entry
    that has no protobuf form (an image asset pointer, a value out of range, ...)."""
    config, config_v2 = _config_maps(call.loss_fn_config)
    message = m.ForwardBackwardRequest(
        model_id=call.model_id,
        seq_id=call.seq_id,
        data=_datum_messages(call.data),
        loss_fn=call.loss_fn,
        loss_fn_config=config,
        forward_only=call.forward_only,
        loss_fn_config_v2=config_v2,
    )
    return encode(message)


def decode_forward_backward_request(body: BytesLike) -> ForwardBackwardCall:
    """A ForwardBackwardRequest body as a ForwardBackwardCall; ProtobufDecodeError says what
    is malformed or cannot be represented by tinker.types."""
    message = decode(body, m.ForwardBackwardRequest)
    data = []
    for index, datum in enumerate(message.data):
        try:
            data.append(_datum_value(datum))
        except ProtobufDecodeError as exc:
            raise exc.within(f"[{index}]").within("data").within("ForwardBackwardRequest") from None
        except (TypeError, ValueError) as exc:
            raise ProtobufDecodeError(
                str(exc), "ForwardBackwardRequest", "data", f"[{index}]"
            ) from None
    config: dict[str, float | str] = dict(message.loss_fn_config)
    config.update((k, v) for k, v in message.loss_fn_config_v2.items() if v is not None)
    return ForwardBackwardCall(
        model_id=message.model_id,
        seq_id=message.seq_id,
        data=data,
        loss_fn=message.loss_fn,
        loss_fn_config=config or None,
        forward_only=message.forward_only,
    )


def _config_maps(
    config: Mapping[str, Any] | None,
) -> tuple[dict[str, float], dict[str, m.LossConfigValue]]:
    numbers: dict[str, float] = {}
    values: dict[str, m.LossConfigValue] = {}
    for key, value in (config or {}).items():
        if isinstance(value, str):
            values[key] = value
        elif isinstance(value, (bool, int, float, np.integer, np.floating)):
            numbers[key] = values[key] = float(value)
        else:
            raise ValueError(
                f"loss_fn_config[{key!r}]: expected a number or a string, "
                f"got {type(value).__name__}"
            )
    return numbers, values


def _datum_messages(data: Sequence[types.Datum]) -> list[m.Datum]:
    messages = []
    for index, datum in enumerate(data):
        try:
            messages.append(_datum_message(datum))
        except ValueError as exc:
            raise ValueError(f"data[{index}].{exc}") from None
    return messages


def _datum_message(datum: types.Datum) -> m.Datum:
    chunks = []
    for position, chunk in enumerate(datum.model_input.chunks):
        try:
            chunks.append(_chunk_message(chunk))
        except ValueError as exc:
            raise ValueError(f"model_input.chunks[{position}]: {exc}") from None
    inputs = {}
    for key, value in datum.loss_fn_inputs.items():
        try:
            inputs[key] = _tensor_message(value)
        except ValueError as exc:
            raise ValueError(f"loss_fn_inputs[{key!r}]: {exc}") from None
    return m.Datum(
        model_input=chunks,
        loss_fn_inputs=inputs,
        model_input_spans=[_span_message(span) for span in datum.model_input_spans or ()],
        loss_fn_input_spans=[_span_message(span) for span in datum.loss_fn_input_spans or ()],
    )


def _span_message(span: types.PromptProvenanceSpan | types.SampledProvenanceSpan) -> Any:
    kind = (
        m.PromptProvenanceSpan
        if isinstance(span, types.PromptProvenanceSpan)
        else m.SampledProvenanceSpan
    )
    return kind(sequence_id=span.sequence_id, offset=span.offset, length=span.length)


def _span_value(span: m.ProvenanceSpan) -> types.PromptProvenanceSpan | types.SampledProvenanceSpan:
    kind = (
        types.PromptProvenanceSpan
        if isinstance(span, m.PromptProvenanceSpan)
        else types.SampledProvenanceSpan
    )
    return kind(sequence_id=span.sequence_id, offset=span.offset, length=span.length)


def _chunk_message(chunk: types.ModelInputChunk) -> m.Chunk:
    if isinstance(chunk, types.EncodedTextChunk):
        tokens = _numbers(chunk.tokens, np.dtype("<i8"))
        if tokens.size and int(tokens.max()) > _INT32_MAX:
            raise ValueError(f"token id {int(tokens.max())} does not fit in int32")
        return m.EncodedTextChunk(tokens=tokens.astype("<i4"))
    if isinstance(chunk, types.ImageChunk):
        return m.ImageChunk(
            data=bytes(chunk.data), format=chunk.format, expected_tokens=chunk.expected_tokens
        )
    raise ValueError(
        f"{type(chunk).__name__} has no protobuf form; forward and forward_backward "
        "take token and inline image chunks only"
    )


def _numbers(values: Any, dtype: np.dtype[Any]) -> Array:
    """Values (a list, a tuple or an array) as a 1-D array of `dtype`, without a detour
    through a Python list when they already are an array."""
    if isinstance(values, np.ndarray):
        return np.ascontiguousarray(values, dtype).reshape(-1)
    return np.fromiter(values, dtype, len(values))


def _tensor_message(tensor: types.TensorData) -> m.Tensor:
    """A tensor as it is stored: dense, or CSR when it is sparse (as TensorData.from_torch_sparse
    and Datum make 2-D torch targets and weights); values straight from its array."""
    dtype = _WIRE_DTYPE.get(tensor.dtype)
    if dtype is None:
        raise ValueError(f"dtype {tensor.dtype!r} has no protobuf form")
    values = np.ascontiguousarray(tensor.values, _NUMPY[tensor.dtype]).reshape(-1)
    shape = () if tensor.shape is None else tuple(tensor.shape)
    crow, cols = tensor.sparse_crow_indices, tensor.sparse_col_indices
    if crow is None or cols is None:
        return m.Tensor(dtype=dtype, shape=shape, dense=values)
    csr = m.SparseCsr(
        values=values, crow_indices=np.asarray(crow, "<i8"), col_indices=np.asarray(cols, "<i8")
    )
    return m.Tensor(dtype=dtype, shape=shape, sparse_csr=csr)


def _datum_value(datum: m.Datum) -> types.Datum:
    chunks = []
    for position, chunk in enumerate(datum.model_input):
        try:
            chunks.append(_chunk_value(chunk))
        except ProtobufDecodeError as exc:
            raise exc.within(f"[{position}]").within("model_input") from None
    inputs = {}
    for key, tensor in datum.loss_fn_inputs.items():
        try:
            inputs[key] = _tensor_data(tensor)
        except ProtobufDecodeError as exc:
            raise exc.within(f"[{key!r}]").within("loss_fn_inputs") from None
    return types.Datum(
        model_input=types.ModelInput(chunks=chunks),
        loss_fn_inputs=inputs,
        model_input_spans=[_span_value(span) for span in datum.model_input_spans] or None,
        loss_fn_input_spans=[_span_value(span) for span in datum.loss_fn_input_spans] or None,
    )


def _chunk_value(chunk: m.Chunk) -> types.ModelInputChunk:
    if isinstance(chunk, m.EncodedTextChunk):
        return types.EncodedTextChunk(tokens=chunk.tokens.tolist())
    if isinstance(chunk, m.ImageChunk):
        if chunk.format not in ("png", "jpeg"):
            raise ProtobufDecodeError(f"image format {chunk.format!r} is not png or jpeg", "image")
        # The 0.38 chunk has no height, width or token count: its length is expected_tokens.
        return types.ImageChunk.model_construct(
            data=chunk.data,
            format=chunk.format,
            expected_tokens=chunk.expected_tokens,
            tokens=chunk.expected_tokens or 0,
            height=0,
            width=0,
        )
    raise ProtobufDecodeError("dmel chunks have no tinker.types form", "dmel")


def _widened(values: Array, dtype: m.DType) -> Array:
    """int32 as int64 and bfloat16 as float32 (its 16 bits become the upper half)."""
    if dtype == m.DType.INT32:
        return values.astype(np.int64)
    if dtype == m.DType.BFLOAT16:
        return (values.astype(np.uint32) << 16).view(np.float32)
    return values


def _tensor_data(tensor: m.Tensor) -> types.TensorData:
    """A Tensor as TensorData, sparse ones kept sparse (int32 widened to int64, bfloat16 to
    float32)."""
    csr = tensor.sparse_csr
    if csr is None:
        return types.TensorData.from_numpy(tensor_array(tensor))
    listed = _widened(csr.values, tensor.dtype)
    return types.TensorData(
        data=listed,
        dtype="int64" if listed.dtype.kind == "i" else "float32",
        shape=list(tensor.shape),
        sparse_crow_indices=csr.crow_indices,
        sparse_col_indices=csr.col_indices,
    )


def tensor_array(tensor: m.Tensor) -> Array:
    """A Tensor as a dense numpy array of its shape (int32 widened to int64, bfloat16 to
    float32); a sparse one densified with zeros, refused past MAX_DENSIFIED_VALUES."""
    shape = tensor.shape
    if tensor.sparse_csr is None:
        values = np.empty(0, np.float32) if tensor.dense is None else tensor.dense
        array = _widened(values, tensor.dtype)
        return array.reshape(shape) if shape else array
    rows, cols = shape
    if rows * cols > MAX_DENSIFIED_VALUES:
        raise ProtobufDecodeError(
            f"a sparse {rows} x {cols} tensor is too large to densify "
            f"(at most {MAX_DENSIFIED_VALUES} values)",
            "sparse_csr",
        )
    csr = tensor.sparse_csr
    listed = _widened(csr.values, tensor.dtype)
    dense = np.zeros((rows, cols), listed.dtype)
    row_of = np.repeat(np.arange(rows), np.diff(csr.crow_indices))
    dense[row_of, csr.col_indices] = listed
    return dense


# --- forward_backward results ----------------------------------------------------------------


def encode_forward_backward_output(output: types.ForwardBackwardOutput) -> bytes:
    """The ForwardBackwardOutput body of `output`: per-datum outputs batched into records
    (a new record wherever a field's dtype or trailing shape changes)."""
    arrays = [
        {name: _output_array(index, name, td) for name, td in outputs.items()}
        for index, outputs in enumerate(output.loss_fn_outputs)
    ]
    return encode_forward_backward_arrays(output.loss_fn_output_type, arrays, output.metrics)


def encode_forward_backward_arrays(
    loss_fn_output_type: str,
    outputs: Sequence[Mapping[str, Array]],
    metrics: Mapping[str, float],
) -> bytes:
    """The ForwardBackwardOutput body of per-datum output arrays (float32 or int64, at least
    1-D), without a detour through TensorData: what a server holding numpy results sends."""
    records: list[m.ArrayRecord] = []
    names: list[str] | None = None
    signature: tuple[Any, ...] | None = None
    group: list[Mapping[str, Array]] = []
    for index, arrays in enumerate(outputs):
        for name, array in arrays.items():
            if array.dtype.str not in ("<f4", "<i8") or array.ndim == 0:
                raise ValueError(
                    f"loss_fn_outputs[{index}][{name!r}]: a {array.ndim}-d {array.dtype} array "
                    "has no protobuf form (float32 or int64, at least 1-D: give a scalar "
                    "shape [1])"
                )
        if names is None:
            names = sorted(arrays)
        elif sorted(arrays) != names:
            raise ValueError(
                f"loss_fn_outputs[{index}]: fields {sorted(arrays)} differ from the first "
                f"datum's {names}; every datum must have the same outputs"
            )
        current = tuple((a.dtype.str, a.shape[1:]) for _, a in sorted(arrays.items()))
        if group and current != signature:
            records.append(_record(group))
            group = []
        signature = current
        group.append(arrays)
    if group:
        records.append(_record(group))
    message = m.ForwardBackwardOutput(
        loss_fn_output_type=loss_fn_output_type,
        loss_fn_outputs=records,
        metrics=dict(metrics),
    )
    return encode(message)


def _output_array(index: int, name: str, tensor: types.TensorData) -> Array:
    where = f"loss_fn_outputs[{index}][{name!r}]"
    if tensor.dtype not in _NUMPY:
        raise ValueError(f"{where}: dtype {tensor.dtype!r} has no protobuf form")
    array = tensor.to_numpy()
    if array.ndim == 0:  # checked here: ascontiguousarray would make it 1-D
        raise ValueError(f"{where}: a 0-d output has no protobuf form (give it shape [1])")
    return np.ascontiguousarray(array, _NUMPY[tensor.dtype])


def _record(group: list[Mapping[str, Array]]) -> m.ArrayRecord:
    fields = {}
    for name, first in group[0].items():
        arrays = [outputs[name] for outputs in group]
        offsets = np.zeros(len(arrays) + 1, np.int64)
        np.cumsum([a.nbytes for a in arrays], out=offsets[1:])
        fields[name] = m.BatchedTensor(
            data=np.concatenate([a.reshape(-1) for a in arrays]),
            offsets=offsets,
            dtype=_WIRE_DTYPE[first.dtype.name],
            trailing_shape=first.shape[1:],
        )
    return m.ArrayRecord(fields=fields, num_datums=len(group))


def decode_forward_backward_output(body: BytesLike) -> types.ForwardBackwardOutput:
    """A ForwardBackwardOutput body as types.ForwardBackwardOutput (one dict of tensors per
    datum, records concatenated in order); ProtobufDecodeError says what is wrong."""
    message = decode(body, m.ForwardBackwardOutput)
    names: list[str] | None = None
    outputs: list[dict[str, types.TensorData]] = []
    for index, record in enumerate(message.loss_fn_outputs):
        if names is None:
            names = sorted(record.fields)
        elif sorted(record.fields) != names:
            raise ProtobufDecodeError(
                f"fields {sorted(record.fields)} differ from the first record's {names}",
                "ForwardBackwardOutput",
                "loss_fn_outputs",
                f"[{index}]",
            )
        outputs += _record_outputs(record)
    kind = message.loss_fn_output_type.rsplit(":", 1)[-1]
    return types.ForwardBackwardOutput(
        loss_fn_output_type=kind or ("" if message.loss_fn_outputs else "ArrayRecord"),
        loss_fn_outputs=outputs,
        metrics=dict(message.metrics),
    )


def _record_outputs(record: m.ArrayRecord) -> list[dict[str, types.TensorData]]:
    count = record.num_datums
    if not count and record.fields:
        count = batched_datum_count(next(iter(record.fields.values())))
    outputs: list[dict[str, types.TensorData]] = [{} for _ in range(count)]
    for name, batched in record.fields.items():
        # One writable array of the stored type per field; each datum's tensor is a view of it.
        field = types.TensorData.from_numpy(_widened(batched.data, batched.dtype))
        values, dtype = field.values, field.dtype
        bounds = (batched.offsets // batched.data.itemsize).tolist()
        trailing = batched.trailing_shape
        row = math.prod(trailing)
        for index, per_datum in enumerate(outputs):
            part = values[bounds[index] : bounds[index + 1]]
            leading = part.size // row if row else 0  # the leading dimension is inferred
            per_datum[name] = types.TensorData._wrap(part.reshape(leading, *trailing), dtype)
    return outputs


# --- sample results --------------------------------------------------------------------------


def encode_sample_response(response: types.SampleResponse) -> bytes:
    """The SampleResponse body of `response`, straight from its arrays (unscored prompt
    positions are NaN already)."""
    sequences = [
        m.SampledSequence(
            stop_reason=stop_reason_message(sequence.stop_reason),
            tokens=np.ascontiguousarray(sequence.tokens_np, "<i4"),
            logprobs=None
            if sequence.logprobs_np is None
            else np.ascontiguousarray(sequence.logprobs_np, "<f4"),
            topk_sampled_logprobs=topk_table_message(sequence.topk_logprobs_np),
        )
        for sequence in response.sequences
    ]
    prompt = response.prompt_logprobs_np
    target = response.target_prompt_logprobs
    alt = response.prompt_alt_tokens
    message = m.SampleResponse(
        sequences=sequences,
        prompt_logprobs=None if prompt is None else np.ascontiguousarray(prompt, "<f4"),
        topk_prompt_logprobs=topk_table_message(response.topk_prompt_logprobs_np),
        prompt_cache_hit_tokens=response.prompt_cache_hit_tokens,
        target_prompt_logprobs=None if target is None else _tensor_message(target),
        prompt_alt_tokens=None
        if alt is None
        else m.PromptAltTokens(
            tokens=_tensor_message(alt.tokens), logprobs=_tensor_message(alt.logprobs)
        ),
    )
    return encode(message)


def stop_reason_message(reason: str) -> m.StopReason:
    """A stop reason ("length" or "stop") as its enum value."""
    return m.StopReason.LENGTH if reason == "length" else m.StopReason.STOP


def topk_table_message(table: Any) -> m.TopkLogprobs | None:
    """A (length, k) top-k table (`token_ids`, `logprobs` arrays, as types.TopkLogprobs and
    the local backend hold them) as its message; None stays None."""
    if table is None:
        return None
    ids = np.asarray(table.token_ids)
    length, k = ids.shape
    return m.TopkLogprobs(
        token_ids=np.ascontiguousarray(ids, "<i4").reshape(-1),
        logprobs=np.ascontiguousarray(table.logprobs, "<f4").reshape(-1),
        k=k,
        length=length,
    )


def topk_rows_message(
    rows: Sequence[Sequence[tuple[int, float]] | None] | None,
) -> m.TopkLogprobs | None:
    """Rows of (token, logprob) pairs as a dense table, short rows padded with the sentinel."""
    if rows is None:
        return None
    k = max((len(row) for row in rows if row), default=0)
    token_ids = np.full((len(rows), k), TOPK_SENTINEL_TOKEN, "<i4")
    logprobs = np.full((len(rows), k), TOPK_SENTINEL_LOGPROB, "<f4")
    for index, row in enumerate(rows):
        for column, (token, logprob) in enumerate(row or ()):
            token_ids[index, column] = token
            logprobs[index, column] = logprob
    return m.TopkLogprobs(
        token_ids=token_ids.reshape(-1), logprobs=logprobs.reshape(-1), k=k, length=len(rows)
    )


def decode_sample_response(body: BytesLike) -> types.SampleResponse:
    """A SampleResponse body as types.SampleResponse, its arrays kept (no lists are built);
    ProtobufDecodeError says what is wrong, also for values the result types refuse."""
    message = decode(body, m.SampleResponse)
    try:
        return _sample_response(message)
    except (ValueError, TypeError) as exc:
        raise ProtobufDecodeError(
            f"the sample response does not fit: {exc}", "SampleResponse"
        ) from exc


def _sample_response(message: m.SampleResponse) -> types.SampleResponse:
    sequences = [
        types.SampledSequence(
            stop_reason="length" if sequence.stop_reason == m.StopReason.LENGTH else "stop",
            tokens_np=sequence.tokens,
            logprobs_np=_present(sequence.logprobs),
            topk_logprobs_np=_topk_table(sequence.topk_sampled_logprobs),
        )
        for sequence in message.sequences
    ]
    target = message.target_prompt_logprobs
    alt = message.prompt_alt_tokens
    return types.SampleResponse(
        sequences=sequences,
        prompt_logprobs_np=_present(message.prompt_logprobs),
        topk_prompt_logprobs_np=_topk_table(message.topk_prompt_logprobs),
        target_prompt_logprobs=None if target is None else _tensor_data(target),
        prompt_cache_hit_tokens=message.prompt_cache_hit_tokens,
        prompt_alt_tokens=None
        if alt is None or alt.tokens is None or alt.logprobs is None
        else types.PromptAltTokens(
            tokens=_tensor_data(alt.tokens), logprobs=_tensor_data(alt.logprobs)
        ),
    )


def _topk_table(topk: m.TopkLogprobs | None) -> types.TopkLogprobs | None:
    """A top-k message as the table (None when absent or empty)."""
    if topk is None or topk.k == 0 or topk.length == 0:
        return None
    shape = (topk.length, topk.k)
    return types.TopkLogprobs(
        token_ids=topk.token_ids.reshape(shape), logprobs=topk.logprobs.reshape(shape)
    )


def _present(values: Array | None) -> Array | None:
    """An optional numeric field, or None when absent or empty (both read alike)."""
    return None if values is None or values.size == 0 else values
