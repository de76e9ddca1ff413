"""forward / forward_backward requests of either body format as one server value.

0.5.1 clients send JSON (`tinker.types` ForwardRequest / ForwardBackwardRequest), 0.38 clients
a protobuf ForwardBackwardRequest (`forward_only` for forward). Both become a TrainingBatch:
each datum's tokens (int64) and loss inputs as numpy arrays (target_tokens int64, the rest
float32, finite), with its provenance spans when the client sent them. Image and audio chunks
are refused (the local models read tokens only). A loss_fn_config entry of the protobuf's v2 map
wins over the legacy one of the same key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NoReturn

import attrs
import numpy as np

from tinker import types
from tinker._wire.proto import ProtobufDecodeError, mapping
from tinker._wire.proto import messages as m
from tinker.local.compute.backend import SpanSpec
from tinker.local.server import settings
from tinker.local.server.http_errors import BadRequest


@attrs.frozen
class DatumInput:
    """One training example: input tokens (int64, N), its named loss inputs and, optionally,
    the provenance spans of its input tokens and of its targets."""

    tokens: np.ndarray
    inputs: Mapping[str, np.ndarray]
    model_input_spans: tuple[SpanSpec, ...] | None = None
    loss_fn_input_spans: tuple[SpanSpec, ...] | None = None


@attrs.frozen
class TrainingBatch:
    """What one forward or forward_backward request asks for."""

    model_id: str
    seq_id: int | None
    data: list[DatumInput]
    loss_fn: str
    loss_fn_config: dict[str, float | str] | None
    forward_only: bool


def from_json(
    model_id: str, seq_id: int | None, batch: types.ForwardBackwardInput, *, forward_only: bool
) -> TrainingBatch:
    """A JSON forward / forward_backward request."""
    data = [_json_datum(index, datum) for index, datum in enumerate(batch.data)]
    config: dict[str, float | str] | None = None
    if batch.loss_fn_config is not None:
        config = dict(batch.loss_fn_config)
    return TrainingBatch(model_id, seq_id, data, str(batch.loss_fn), config, forward_only)


def from_message(message: m.ForwardBackwardRequest) -> TrainingBatch:
    """A protobuf ForwardBackwardRequest."""
    data = [_message_datum(index, datum) for index, datum in enumerate(message.data)]
    config: dict[str, float | str] = dict(message.loss_fn_config)
    config.update((key, v) for key, v in message.loss_fn_config_v2.items() if v is not None)
    return TrainingBatch(
        message.model_id,
        message.seq_id,
        data,
        message.loss_fn,
        config or None,
        message.forward_only,
    )


def tokens(model_input: types.ModelInput, where: str) -> list[int]:
    """The token ids of a JSON ModelInput; BadRequest for chunks that are not tokens."""
    found: list[int] = []
    for chunk in model_input.chunks:
        if not isinstance(chunk, types.EncodedTextChunk):
            _refuse_chunk(where, type(chunk).__name__)
        found.extend(int(token) for token in chunk.tokens)
    return found


def _refuse_chunk(where: str, kind: str) -> NoReturn:
    raise BadRequest(
        f"{where}: {kind} chunks are not supported by the local text models; send token "
        "chunks only."
    )


def _json_datum(index: int, datum: types.Datum) -> DatumInput:
    where = f"datum {index}"
    found = np.asarray(tokens(datum.model_input, where), dtype=np.int64)
    inputs: dict[str, np.ndarray] = {}
    for key, tensor in datum.loss_fn_inputs.items():
        with np.errstate(over="ignore"):  # values beyond float32 become inf, refused below
            inputs[key] = _loss_input(where, key, tensor.to_numpy())
    return DatumInput(found, inputs)


def _message_datum(index: int, datum: m.Datum) -> DatumInput:
    where = f"datum {index}"
    parts: list[np.ndarray] = []
    for chunk in datum.model_input:
        if not isinstance(chunk, m.EncodedTextChunk):
            _refuse_chunk(where, type(chunk).__name__)
        parts.append(chunk.tokens.astype(np.int64))
    found = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    inputs: dict[str, np.ndarray] = {}
    for key, tensor in datum.loss_fn_inputs.items():
        if math.prod(tensor.shape) > settings.MAX_TENSOR_VALUES:
            raise BadRequest(
                f"{where}: loss_fn_inputs[{key!r}] has shape {list(tensor.shape)}, more than "
                f"{settings.MAX_TENSOR_VALUES} values."
            )
        try:
            array = mapping.tensor_array(tensor)
        except ProtobufDecodeError as exc:
            raise BadRequest(f"{where}: loss_fn_inputs[{key!r}]: {exc}") from exc
        inputs[key] = _loss_input(where, key, array)
    if bool(datum.model_input_spans) != bool(datum.loss_fn_input_spans):
        raise BadRequest(
            f"{where}: model_input_spans and loss_fn_input_spans go together (both or neither)."
        )
    return DatumInput(
        found,
        inputs,
        _spans(datum.model_input_spans),
        _spans(datum.loss_fn_input_spans),
    )


def _loss_input(where: str, key: str, array: np.ndarray) -> np.ndarray:
    """target_tokens as int64, every other input as finite float32."""
    if key == "target_tokens":
        if array.dtype.kind not in "iu":
            raise BadRequest(f"{where}: target_tokens must be int64, got {array.dtype}.")
        return array.astype(np.int64)
    with np.errstate(over="ignore"):
        values = array.astype(np.float32)
    if not np.isfinite(values).all():
        raise BadRequest(
            f"{where}: loss_fn_inputs[{key!r}] holds NaN, infinity or values beyond the float32 "
            "range."
        )
    return values


def _spans(spans: Sequence[m.ProvenanceSpan]) -> tuple[SpanSpec, ...] | None:
    if not spans:
        return None
    return tuple(
        (
            "prompt" if isinstance(span, m.PromptProvenanceSpan) else "sampled",
            span.sequence_id,
            span.offset,
            span.length,
        )
        for span in spans
    )
