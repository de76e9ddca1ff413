"""The messages of `tinker_public.proto` (package `tinker_public`, proto3) as Python values.

One dataclass per message, fields named and typed as in the schema. Numeric `bytes` fields
are numpy arrays of their element type (little-endian, row-major); those whose element type
depends on a `DType` (Tensor.dense, SparseCsr.values, BatchedTensor.data) hold it as
`wire_dtype(dtype)` says, bfloat16 as its raw uint16 patterns. Proto3 `optional` and singular
message fields are `None` when absent. Pure-oneof wrapper messages are flattened: a `Chunk` is
one of the chunk classes, a `ProvenanceSpan` one of the span classes, a `LossConfigValue` a
float (`number`), a str (`text`) or None (neither set). Decoded arrays are read-only views of
the input bytes. This module imports no numpy, so importing it stays light.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Array = npt.NDArray[Any]

__all__ = [
    "ArrayRecord",
    "BatchedTensor",
    "Chunk",
    "DType",
    "Datum",
    "DmelChunk",
    "EncodedTextChunk",
    "ForwardBackwardOutput",
    "ForwardBackwardRequest",
    "ImageChunk",
    "ImageDimensions",
    "LossConfigValue",
    "Message",
    "PromptAltTokens",
    "PromptProvenanceSpan",
    "ProvenanceSpan",
    "SampleResponse",
    "SampledProvenanceSpan",
    "SampledSequence",
    "SamplingParams",
    "SparseCsr",
    "StopReason",
    "StopStrings",
    "StopTokens",
    "Tensor",
    "TopkLogprobs",
    "wire_dtype",
]


class DType(enum.IntEnum):
    """Element type of a Tensor or BatchedTensor (`DTYPE_*` in the schema)."""

    UNSPECIFIED = 0
    FLOAT32 = 1
    INT64 = 2
    INT32 = 3
    BFLOAT16 = 4


class StopReason(enum.IntEnum):
    """Why a sampled sequence ended (`STOP_REASON_*` in the schema)."""

    STOP = 0
    LENGTH = 1


# numpy dtype string of each DType's elements on the wire (bfloat16 as raw 16-bit patterns).
_WIRE_DTYPES = {DType.FLOAT32: "<f4", DType.INT64: "<i8", DType.INT32: "<i4", DType.BFLOAT16: "<u2"}
_NUMPY_DTYPES: dict[int, np.dtype[Any]] = {}


def wire_dtype(dtype: DType) -> np.dtype[Any]:
    """The numpy dtype that holds `dtype`'s elements; ValueError for DTYPE_UNSPECIFIED."""
    found = _NUMPY_DTYPES.get(dtype)
    if found is None:
        import numpy as np

        if dtype not in _WIRE_DTYPES:
            raise ValueError(f"no element type for {DType(dtype).name}")
        found = _NUMPY_DTYPES[dtype] = np.dtype(_WIRE_DTYPES[dtype])
    return found


# --- tensors ---------------------------------------------------------------------------------


@dataclass(slots=True, eq=False, kw_only=True)
class SparseCsr:
    """CSR layout of a 2-D tensor: listed values, row pointers (rows + 1), column indices."""

    values: Array
    crow_indices: Array
    col_indices: Array


@dataclass(slots=True, eq=False, kw_only=True)
class Tensor:
    """A tensor in `dtype`: `dense` or `sparse_csr` (a oneof); `shape` is the dense shape
    (empty: not given)."""

    dtype: DType
    shape: tuple[int, ...] = ()
    dense: Array | None = None
    sparse_csr: SparseCsr | None = None


@dataclass(slots=True, eq=False, kw_only=True)
class BatchedTensor:
    """One output field of every datum of an ArrayRecord: values back to back, with byte
    offsets (num_datums + 1) and the per-datum shape without its leading dimension."""

    data: Array
    offsets: Array
    dtype: DType
    trailing_shape: tuple[int, ...] = ()


@dataclass(slots=True, eq=False, kw_only=True)
class ArrayRecord:
    """Per-datum outputs of consecutive datums, as one BatchedTensor per output name."""

    fields: dict[str, BatchedTensor] = field(default_factory=dict)
    num_datums: int = 0
    type_tag: str = ""


@dataclass(slots=True, eq=False, kw_only=True)
class ForwardBackwardOutput:
    """Result of forward / forward_backward."""

    loss_fn_outputs: list[ArrayRecord] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    loss_fn_output_type: str = ""


# --- forward_backward request ----------------------------------------------------------------


@dataclass(slots=True, eq=False, kw_only=True)
class EncodedTextChunk:
    """Token ids (int32)."""

    tokens: Array


@dataclass(slots=True, eq=False, kw_only=True)
class ImageDimensions:
    """Width and height used instead of the encoded image's own."""

    width: int = 0
    height: int = 0


@dataclass(slots=True, eq=False, kw_only=True)
class ImageChunk:
    """An inline image."""

    data: bytes = b""
    format: str = ""
    expected_tokens: int | None = None
    override_dimensions: ImageDimensions | None = None


@dataclass(slots=True, eq=False, kw_only=True)
class DmelChunk:
    """Audio DMel tokens, a serialized container passed through unchanged."""

    dmel: bytes = b""


Chunk = Union[EncodedTextChunk, ImageChunk, DmelChunk]


@dataclass(slots=True, eq=False, kw_only=True)
class _ProvenanceRun:
    """`length` consecutive tokens of a datum, traced to the sequence `sequence_id`."""

    sequence_id: str = ""
    offset: int = 0
    length: int = 0


@dataclass(slots=True, eq=False, kw_only=True)
class PromptProvenanceSpan(_ProvenanceRun):
    """A run taken from the prompt of the request that sampled `sequence_id`, at `offset`."""


@dataclass(slots=True, eq=False, kw_only=True)
class SampledProvenanceSpan(_ProvenanceRun):
    """A run taken from the sampled tokens of `sequence_id`, at `offset`."""


ProvenanceSpan = Union[PromptProvenanceSpan, SampledProvenanceSpan]


@dataclass(slots=True, eq=False, kw_only=True)
class Datum:
    """One training example: its input chunks, loss inputs and optional provenance."""

    model_input: list[Chunk] = field(default_factory=list)
    loss_fn_inputs: dict[str, Tensor] = field(default_factory=dict)
    model_input_spans: list[ProvenanceSpan] = field(default_factory=list)
    loss_fn_input_spans: list[ProvenanceSpan] = field(default_factory=list)


LossConfigValue = Union[float, str, None]


@dataclass(slots=True, eq=False, kw_only=True)
class ForwardBackwardRequest:
    """Body of POST /api/v1/forward_backward (forward too, with `forward_only`)."""

    model_id: str = ""
    seq_id: int = 0
    data: list[Datum] = field(default_factory=list)
    loss_fn: str = ""
    loss_fn_config: dict[str, float] = field(default_factory=dict)
    forward_only: bool = False
    loss_fn_config_v2: dict[str, LossConfigValue] = field(default_factory=dict)


# --- sampling --------------------------------------------------------------------------------


@dataclass(slots=True, eq=False, kw_only=True)
class TopkLogprobs:
    """Dense top-k table: `length` rows of `k` (token id, logprob) cells, flat row-major."""

    token_ids: Array
    logprobs: Array
    k: int = 0
    length: int = 0


@dataclass(slots=True, eq=False, kw_only=True)
class PromptAltTokens:
    """k alternative tokens and their logprobs per prompt position after the first."""

    tokens: Tensor | None = None
    logprobs: Tensor | None = None


@dataclass(slots=True, eq=False, kw_only=True)
class SampledSequence:
    """One generated continuation."""

    tokens: Array
    stop_reason: StopReason = StopReason.STOP
    logprobs: Array | None = None
    topk_sampled_logprobs: TopkLogprobs | None = None


@dataclass(slots=True, eq=False, kw_only=True)
class SampleResponse:
    """Result of a sample request."""

    sequences: list[SampledSequence] = field(default_factory=list)
    prompt_logprobs: Array | None = None
    topk_prompt_logprobs: TopkLogprobs | None = None
    prompt_cache_hit_tokens: int = 0
    target_prompt_logprobs: Tensor | None = None
    prompt_alt_tokens: PromptAltTokens | None = None


@dataclass(slots=True, eq=False, kw_only=True)
class StopStrings:
    """Stop at any of these strings."""

    values: list[str] = field(default_factory=list)


@dataclass(slots=True, eq=False, kw_only=True)
class StopTokens:
    """Stop at any of these token ids."""

    values: list[int] = field(default_factory=list)


@dataclass(slots=True, eq=False, kw_only=True)
class SamplingParams:
    """Sampling settings (in the schema; requests of the protocol send them as JSON)."""

    max_tokens: int | None = None
    seed: int | None = None
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    stop: StopStrings | StopTokens | None = None


Message = Union[
    ArrayRecord,
    BatchedTensor,
    Datum,
    DmelChunk,
    EncodedTextChunk,
    ForwardBackwardOutput,
    ForwardBackwardRequest,
    ImageChunk,
    ImageDimensions,
    PromptAltTokens,
    PromptProvenanceSpan,
    SampleResponse,
    SampledProvenanceSpan,
    SampledSequence,
    SamplingParams,
    SparseCsr,
    StopStrings,
    StopTokens,
    Tensor,
    TopkLogprobs,
]
