"""`tinker_public.proto` as data: every message's fields with number, name, type and label.

The decoder and the encoder both read these tables, so each field number and type is written
down once, as the service's `tinker_public.proto` numbers them. Light: no numpy.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["SCHEMA", "Field", "Kind", "Label", "Table"]


class Kind(enum.Enum):
    """A field's protobuf type, as far as the wire format tells them apart."""

    STRING = "string"
    BYTES = "bytes"
    INT32 = "int32"
    INT64 = "int64"
    UINT32 = "uint32"
    UINT64 = "uint64"
    BOOL = "bool"
    ENUM = "enum"
    DOUBLE = "double"
    FLOAT = "float"
    MESSAGE = "message"
    PACKED_INT32 = "repeated int32"
    PACKED_INT64 = "repeated int64"
    STRING_LIST = "repeated string"
    DOUBLE_MAP = "map<string, double>"
    MESSAGE_MAP = "map<string, message>"


class Label(enum.Enum):
    """How often a field occurs and when it is written."""

    IMPLICIT = "implicit"  # proto3 scalar without `optional`: left out at its default
    PRESENT = "present"  # `optional`, a oneof member, or a singular message: written when set
    REPEATED = "repeated"  # repeated message: one occurrence per element


@dataclass(frozen=True)
class Field:
    """One field of a message; `array` is the numpy dtype of a `bytes` field of numbers."""

    number: int
    name: str
    kind: Kind
    label: Label = Label.IMPLICIT
    oneof: str = ""
    array: str = ""


@dataclass(frozen=True)
class Table:
    """The fields of one message, in field-number order, with lookups by number."""

    name: str
    fields: tuple[Field, ...]
    by_number: Mapping[int, Field] = field(init=False)
    by_name: Mapping[str, Field] = field(init=False)
    names: Mapping[int, str] = field(init=False)
    oneofs: Mapping[str, tuple[str, ...]] = field(init=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.fields, key=lambda f: f.number))
        object.__setattr__(self, "fields", ordered)
        object.__setattr__(self, "by_number", {f.number: f for f in ordered})
        object.__setattr__(self, "by_name", {f.name: f for f in ordered})
        object.__setattr__(self, "names", {f.number: f.name for f in ordered})
        groups: dict[str, tuple[str, ...]] = {}
        for f in ordered:
            if f.oneof:
                groups[f.oneof] = (*groups.get(f.oneof, ()), f.name)
        object.__setattr__(self, "oneofs", groups)


K, L = Kind, Label
_I4, _I8, _F4 = "<i4", "<i8", "<f4"


def _table(name: str, *fields: Field) -> Table:
    return Table(name, fields)


SCHEMA: dict[str, Table] = {
    table.name: table
    for table in (
        _table(
            "SampleResponse",
            Field(1, "sequences", K.MESSAGE, L.REPEATED),
            Field(2, "prompt_logprobs", K.BYTES, L.PRESENT, array=_F4),
            Field(3, "topk_prompt_logprobs", K.MESSAGE, L.PRESENT),
            Field(4, "prompt_cache_hit_tokens", K.INT32),
            Field(5, "target_prompt_logprobs", K.MESSAGE, L.PRESENT),
            Field(6, "prompt_alt_tokens", K.MESSAGE, L.PRESENT),
        ),
        _table(
            "PromptAltTokens",
            Field(1, "tokens", K.MESSAGE, L.PRESENT),
            Field(2, "logprobs", K.MESSAGE, L.PRESENT),
        ),
        _table(
            "SampledSequence",
            Field(1, "stop_reason", K.ENUM),
            Field(2, "tokens", K.BYTES, array=_I4),
            Field(3, "logprobs", K.BYTES, L.PRESENT, array=_F4),
            Field(4, "topk_sampled_logprobs", K.MESSAGE, L.PRESENT),
        ),
        _table(
            "TopkLogprobs",
            Field(1, "token_ids", K.BYTES, array=_I4),
            Field(2, "logprobs", K.BYTES, array=_F4),
            Field(3, "k", K.UINT32),
            Field(4, "length", K.UINT32),
        ),
        _table(
            "SparseCsr",
            Field(1, "values", K.BYTES),
            Field(2, "crow_indices", K.BYTES, array=_I8),
            Field(3, "col_indices", K.BYTES, array=_I8),
        ),
        _table(
            "Tensor",
            Field(1, "dense", K.BYTES, L.PRESENT, oneof="encoding"),
            Field(2, "sparse_csr", K.MESSAGE, L.PRESENT, oneof="encoding"),
            Field(3, "dtype", K.ENUM),
            Field(4, "shape", K.PACKED_INT64),
        ),
        _table(
            "BatchedTensor",
            Field(1, "data", K.BYTES),
            Field(2, "offsets", K.BYTES, array=_I8),
            Field(3, "dtype", K.ENUM),
            Field(4, "trailing_shape", K.PACKED_INT64),
        ),
        _table(
            "ArrayRecord",
            Field(1, "type_tag", K.STRING),
            Field(2, "fields", K.MESSAGE_MAP),
            Field(3, "num_datums", K.INT64),
        ),
        _table(
            "ForwardBackwardOutput",
            Field(1, "loss_fn_output_type", K.STRING),
            Field(2, "loss_fn_outputs", K.MESSAGE, L.REPEATED),
            Field(3, "metrics", K.DOUBLE_MAP),
        ),
        _table(
            "ForwardBackwardRequest",
            Field(1, "model_id", K.STRING),
            Field(2, "seq_id", K.INT32),
            Field(3, "data", K.MESSAGE, L.REPEATED),
            Field(4, "loss_fn", K.STRING),
            Field(5, "loss_fn_config", K.DOUBLE_MAP),
            Field(6, "forward_only", K.BOOL),
            Field(7, "loss_fn_config_v2", K.MESSAGE_MAP),
        ),
        _table(
            "LossConfigValue",
            Field(1, "number", K.DOUBLE, L.PRESENT, oneof="value"),
            Field(2, "text", K.STRING, L.PRESENT, oneof="value"),
        ),
        _table(
            "Datum",
            Field(1, "model_input", K.MESSAGE, L.REPEATED),
            Field(2, "loss_fn_inputs", K.MESSAGE_MAP),
            Field(3, "model_input_spans", K.MESSAGE, L.REPEATED),
            Field(4, "loss_fn_input_spans", K.MESSAGE, L.REPEATED),
        ),
        _table(
            "ProvenanceSpan",
            Field(1, "prompt_tokens", K.MESSAGE, L.PRESENT, oneof="span"),
            Field(2, "sampled_tokens", K.MESSAGE, L.PRESENT, oneof="span"),
        ),
        _table(
            "ProvenanceRun",  # PromptProvenanceSpan and SampledProvenanceSpan share it
            Field(1, "sequence_id", K.STRING),
            Field(2, "offset", K.INT64),
            Field(3, "length", K.INT64),
        ),
        _table(
            "Chunk",
            Field(1, "encoded_text", K.MESSAGE, L.PRESENT, oneof="chunk"),
            Field(2, "image", K.MESSAGE, L.PRESENT, oneof="chunk"),
            Field(3, "dmel", K.MESSAGE, L.PRESENT, oneof="chunk"),
        ),
        _table("EncodedTextChunk", Field(1, "tokens", K.BYTES, array=_I4)),
        _table(
            "ImageChunk",
            Field(1, "data", K.BYTES),
            Field(2, "format", K.STRING),
            Field(3, "expected_tokens", K.INT32, L.PRESENT),
            Field(4, "override_dimensions", K.MESSAGE, L.PRESENT),
        ),
        _table("ImageDimensions", Field(1, "width", K.UINT32), Field(2, "height", K.UINT32)),
        _table("DmelChunk", Field(1, "dmel", K.BYTES)),
        _table(
            "SamplingParams",
            Field(1, "max_tokens", K.INT32, L.PRESENT),
            Field(2, "seed", K.UINT64, L.PRESENT),
            Field(3, "temperature", K.FLOAT, L.PRESENT),
            Field(4, "top_k", K.INT32, L.PRESENT),
            Field(5, "top_p", K.FLOAT, L.PRESENT),
            Field(6, "stop_strs", K.MESSAGE, L.PRESENT, oneof="stop"),
            Field(7, "stop_tokens", K.MESSAGE, L.PRESENT, oneof="stop"),
        ),
        _table("StopStrings", Field(1, "values", K.STRING_LIST)),
        _table("StopTokens", Field(1, "values", K.PACKED_INT32)),
        _table("MapEntry", Field(1, "key", K.STRING), Field(2, "value", K.MESSAGE)),
        _table("DoubleMapEntry", Field(1, "key", K.STRING), Field(2, "value", K.DOUBLE)),
    )
}
