"""Split forward/forward_backward batches into requests and merge the per-request results.

A request carries at most `max_len` datums and, unless a single datum is larger on its own, at
most `max_size` of their sizes. The 0.5.1 protocol counts numbers (tokens plus loss-input
elements; 128 datums, 500,000 numbers); the 0.38 protocol estimates protobuf bytes (4 per
token plus each loss input's values in its dtype) against the limits the server's config gives
(`chunk_limits`). Metrics of the chunk results are combined by the reduction named after the
':' of each key.
"""

from __future__ import annotations

import hashlib
import logging
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import attrs

__all__ = [
    "LEGACY_CHUNK_LIMITS",
    "MAX_CHUNK_LEN",
    "MAX_CHUNK_NUMBER_COUNT",
    "ChunkLimits",
    "batch_byte_estimate",
    "chunk_data",
    "chunk_limits",
    "datum_byte_estimate",
    "datum_number_count",
    "merge_metrics",
    "merge_outputs",
]

logger = logging.getLogger(__name__)

MAX_CHUNK_LEN = 128
MAX_CHUNK_NUMBER_COUNT = 500_000


class _Sized(Protocol):
    @property
    def length(self) -> int: ...


class _Tensor(Protocol):
    @property
    def data(self) -> Any: ...

    @property
    def dtype(self) -> str: ...


class DatumLike(Protocol):
    """The two attributes of a Datum that chunking reads."""

    @property
    def model_input(self) -> _Sized: ...

    @property
    def loss_fn_inputs(self) -> Mapping[str, _Tensor]: ...


class OutputLike(Protocol):
    """The three fields of a ForwardBackwardOutput that merging reads."""

    @property
    def loss_fn_output_type(self) -> str: ...

    @property
    def loss_fn_outputs(self) -> Sequence[Any]: ...

    @property
    def metrics(self) -> Mapping[str, float]: ...


D = TypeVar("D", bound=DatumLike)


def _element_count(tensor: _Tensor) -> int:
    """How many values a tensor lists: its array's size when it holds one (no list is built)."""
    values = getattr(tensor, "values", None)
    if values is not None and hasattr(values, "size"):
        return int(values.size)
    return len(tensor.data)


def datum_number_count(datum: DatumLike) -> int:
    """Tokens of the model input plus the element count of every loss-function input."""
    return datum.model_input.length + sum(
        _element_count(tensor) for tensor in datum.loss_fn_inputs.values()
    )


_ITEM_BYTES = {"int64": 8, "float32": 4}


def datum_byte_estimate(datum: DatumLike) -> int:
    """The protobuf size of a datum as the 0.38 protocol estimates it: 4 bytes per token plus
    the bytes of each loss input's values in its dtype."""
    return 4 * datum.model_input.length + sum(
        _element_count(tensor) * _ITEM_BYTES.get(tensor.dtype, 8)
        for tensor in datum.loss_fn_inputs.values()
    )


def batch_byte_estimate(data: Sequence[DatumLike]) -> int:
    """The estimated protobuf size of a forward/forward_backward request's datums."""
    return sum(datum_byte_estimate(datum) for datum in data)


@attrs.frozen
class ChunkLimits:
    """How many datums, and how much of their `measure`, one request may carry."""

    max_len: int = MAX_CHUNK_LEN
    max_size: int = MAX_CHUNK_NUMBER_COUNT
    measure: Callable[[Any], int] = datum_number_count


LEGACY_CHUNK_LIMITS = ChunkLimits()


def chunk_limits(era: str, max_len: int, max_bytes: int) -> ChunkLimits:
    """The limits of protocol `era`; the 0.38 ones come from the server's config."""
    if era == "0.5.1":
        return LEGACY_CHUNK_LIMITS
    return ChunkLimits(max_len=max_len, max_size=max_bytes, measure=datum_byte_estimate)


def chunk_data(
    data: Sequence[D],
    *,
    max_len: int = MAX_CHUNK_LEN,
    max_numbers: int = MAX_CHUNK_NUMBER_COUNT,
    limits: ChunkLimits | None = None,
) -> list[list[D]]:
    """Pack datums greedily, in order, into chunks within both limits (`limits`, when given,
    replaces `max_len` and `max_numbers`)."""
    limits = limits or ChunkLimits(max_len=max_len, max_size=max_numbers)
    max_len, max_numbers = limits.max_len, limits.max_size
    chunks: list[list[D]] = []
    current: list[D] = []
    numbers = 0
    for datum in data:
        count = limits.measure(datum)
        if current and (len(current) >= max_len or numbers + count > max_numbers):
            chunks.append(current)
            current, numbers = [], 0
        current.append(datum)
        numbers += count
    if current:
        chunks.append(current)
    return chunks


def _weighted_mean(values: Sequence[float], weights: Sequence[int]) -> float:
    total = sum(weights)
    if total == 0:
        return sum(values) / len(values)
    return sum(v * w for v, w in zip(values, weights, strict=True)) / total


def _hash_unordered(values: Sequence[float]) -> float:
    """A hash of the multiset of values, as a float exactly representable in a double."""
    digest = hashlib.sha256()
    for value in sorted(values):
        digest.update(struct.pack("<d", value))
    return float(int.from_bytes(digest.digest()[:6], "little"))


_Reducer = Callable[[Sequence[float], Sequence[int]], float]

_REDUCERS: dict[str, _Reducer] = {
    "sum": lambda values, _w: float(sum(values)),
    "mean": _weighted_mean,
    "min": lambda values, _w: float(min(values)),
    "max": lambda values, _w: float(max(values)),
    "slack": lambda values, weights: float(max(values)) - _weighted_mean(values, weights),
    "hash_unordered": lambda values, _w: _hash_unordered(values),
}


def _split_key(key: str) -> tuple[str, str]:
    if key.count(":") != 1:
        raise ValueError(
            f"metric key {key!r} must have the form 'name:reduction' with exactly one ':'"
        )
    name, reduction = key.split(":")
    return name, reduction


def merge_metrics(
    chunk_metrics: Sequence[Mapping[str, float]], weights: Sequence[int]
) -> dict[str, float]:
    """Combine the metrics of chunk results; `weights` are the chunks' output counts.

    Keys come from the first chunk; a key missing from any chunk or with an unknown reduction
    is dropped; a key without exactly one ':' raises ValueError.
    """
    if len(chunk_metrics) != len(weights):
        raise ValueError("merge_metrics needs one weight per chunk")
    if not chunk_metrics:
        return {}
    merged: dict[str, float] = {}
    for key in chunk_metrics[0]:
        _name, reduction = _split_key(key)
        if any(key not in metrics for metrics in chunk_metrics):
            logger.debug("dropping metric %r: missing from some chunk results", key)
            continue
        values = [float(metrics[key]) for metrics in chunk_metrics]
        if reduction == "unique":
            merged[key] = values[0]
            for index, value in enumerate(values[1:], start=1):
                merged[f"{key}_{index}"] = value
            continue
        reducer = _REDUCERS.get(reduction)
        if reducer is None:
            logger.debug("dropping metric %r: unknown reduction %r", key, reduction)
            continue
        merged[key] = reducer(values, weights)
    return merged


def merge_outputs(outputs: Sequence[OutputLike]) -> tuple[str, list[Any], dict[str, float]]:
    """Merge chunk results into (loss_fn_output_type, loss_fn_outputs, metrics)."""
    if not outputs:
        return "", [], {}
    merged_outputs: list[Any] = []
    for output in outputs:
        merged_outputs.extend(output.loss_fn_outputs)
    metrics = merge_metrics(
        [output.metrics for output in outputs],
        [len(output.loss_fn_outputs) for output in outputs],
    )
    return outputs[0].loss_fn_output_type, merged_outputs, metrics
