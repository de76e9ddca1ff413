"""Model inputs: token and image chunks, ModelInput, and Datum (one training example)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union

import attrs

from tinker.types._base import WireModel, wire
from tinker.types._data import DataModel, data_model
from tinker.types._losses import INPUT_KEY_DTYPES
from tinker.types._provenance import PromptProvenanceSpan, ProvenanceSpans, SampledProvenanceSpan
from tinker.types._tensors import TensorData, is_numpy_array, is_torch_tensor

__all__ = [
    "Datum",
    "DmelChunk",
    "EncodedTextChunk",
    "ImageAssetPointerChunk",
    "ImageChunk",
    "LossFnInputs",
    "LossFnOutput",
    "ModelInput",
    "ModelInputChunk",
]

ImageFormat = Literal["png", "jpeg"]


@wire
@attrs.frozen(kw_only=True)
class EncodedTextChunk(WireModel):
    """A run of token ids."""

    tokens: Sequence[int]
    type: Literal["encoded_text"] = "encoded_text"

    def _validate(self) -> None:
        if self.tokens and min(self.tokens) < 0:
            index = next(i for i, token in enumerate(self.tokens) if token < 0)
            raise ValueError(
                f"EncodedTextChunk.tokens[{index}]: token ids must be >= 0, "
                f"got {self.tokens[index]}"
            )

    @property
    def length(self) -> int:
        """Positions this chunk occupies: one per token."""
        return len(self.tokens)


def _check_legacy_sizes(chunk: _ImageSizes) -> None:
    for name in ("height", "width", "tokens", "expected_tokens"):
        value = getattr(chunk, name)
        if value is not None and value < 0:
            raise ValueError(f"{type(chunk).__name__}.{name}: must be >= 0, got {value}")


def _image_length(chunk: _ImageSizes) -> int:
    """Positions an image takes: `tokens` (0.5.1 chunks), else `expected_tokens`."""
    if chunk.tokens is not None:
        return chunk.tokens
    if chunk.expected_tokens is None:
        raise ValueError(
            f"{type(chunk).__name__}.length: unknown without expected_tokens (set it to the "
            "number of positions the image takes)"
        )
    return chunk.expected_tokens


# Keys of the 0.5.1 image chunks, which 0.38 removed: sent only in the 0.5.1 JSON era.
LEGACY_IMAGE_KEYS = frozenset({"height", "width", "tokens"})


def _modern_image(out: dict[str, Any]) -> dict[str, Any]:
    """An image chunk's 0.38 JSON: no legacy keys; a 0.5.1 `tokens` count stands in for an
    unset `expected_tokens`."""
    expected = out.get("expected_tokens", out.get("tokens"))
    skipped = LEGACY_IMAGE_KEYS | {"expected_tokens", "type"}
    modern = {key: value for key, value in out.items() if key not in skipped}
    if expected is not None:
        modern["expected_tokens"] = expected
    if "type" in out:
        modern["type"] = out["type"]
    return modern


class _ImageSizes:
    """What both image chunks share: the legacy size checks, the 0.38 JSON form and the
    length (the fields are declared by each chunk)."""

    __slots__ = ()
    tokens: int | None
    expected_tokens: int | None

    def _validate(self) -> None:
        _check_legacy_sizes(self)

    def _wire_out(self, out: dict[str, Any], modern: bool) -> dict[str, Any]:
        return _modern_image(out) if modern else out

    @property
    def length(self) -> int:
        """Positions this chunk occupies (ValueError when neither count is known)."""
        return _image_length(self)


@wire
@attrs.frozen(kw_only=True)
class ImageChunk(_ImageSizes, WireModel):
    """An inline image (bytes; standard base64 in JSON) taking `expected_tokens` positions.

    `height`, `width` and `tokens` are the 0.5.1 fields (0.38 dropped them); when given,
    `tokens` is the chunk's length.
    """

    data: bytes
    format: ImageFormat
    height: int | None = None
    tokens: int | None = None
    width: int | None = None
    expected_tokens: int | None = None
    type: Literal["image"] = "image"


@wire
@attrs.frozen(kw_only=True)
class ImageAssetPointerChunk(_ImageSizes, WireModel):
    """An image referenced by location (path or URL); JSON sample prompts only."""

    format: ImageFormat
    height: int | None = None
    location: str
    tokens: int | None = None
    width: int | None = None
    expected_tokens: int | None = None
    type: Literal["image_asset_pointer"] = "image_asset_pointer"


@wire
@attrs.frozen(kw_only=True)
class DmelChunk(WireModel):
    """Audio DMel tokens: a serialized tensor container (standard base64 in JSON)."""

    dmel: bytes
    type: Literal["dmel"] = "dmel"

    @property
    def length(self) -> int:
        """Positions this chunk occupies: dimension 0 of the container (ValueError if the
        header is malformed)."""
        return dmel_length(self.dmel)


def dmel_length(container: bytes) -> int:
    """Dimension 0 of a serialized tensor container: an optional constant marker byte (254),
    a dtype byte (0..7), the number of dimensions and each dimension as LEB128 varints."""
    position = 1 if container[:1] == b"\xfe" else 0
    if position >= len(container) or container[position] > 7:
        raise ValueError("DmelChunk.dmel: malformed container header (dtype byte)")
    position += 1
    dims, position = _varint(container, position)
    if dims == 0:
        raise ValueError("DmelChunk.dmel: malformed container header (no dimensions)")
    first, _ = _varint(container, position)
    return first


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise ValueError("DmelChunk.dmel: malformed container header (truncated varint)")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, position


ModelInputChunk = Union[EncodedTextChunk, ImageAssetPointerChunk, ImageChunk, DmelChunk]


@wire
@attrs.frozen(kw_only=True)
class ModelInput(WireModel):
    """The model's input sequence: an ordered list of chunks."""

    chunks: list[ModelInputChunk]

    @classmethod
    def from_ints(cls, tokens: Sequence[int]) -> ModelInput:
        """A ModelInput holding one text chunk with these token ids."""
        return cls(chunks=[EncodedTextChunk(tokens=tokens)])

    @classmethod
    def empty(cls) -> ModelInput:
        """A ModelInput with no chunks."""
        return cls(chunks=[])

    def to_ints(self) -> list[int]:
        """All token ids in order; ValueError if any chunk is not text."""
        tokens: list[int] = []
        for chunk in self.chunks:
            if not isinstance(chunk, EncodedTextChunk):
                kinds = [type(c).__name__ for c in self.chunks]
                raise ValueError(f"to_ints needs only EncodedTextChunk chunks, got {kinds}")
            tokens.extend(chunk.tokens)
        return tokens

    @property
    def length(self) -> int:
        """Total positions (context length) of the input."""
        return sum(chunk.length for chunk in self.chunks)

    def append(self, chunk: ModelInputChunk) -> ModelInput:
        """A new ModelInput with `chunk` added at the end (this one is unchanged)."""
        return ModelInput(chunks=[*self.chunks, chunk])

    def append_int(self, token: int) -> ModelInput:
        """A new ModelInput with a one-token text chunk added at the end."""
        return self.append(EncodedTextChunk(tokens=[token]))


LossFnInputs = dict[str, TensorData]
# What a Datum takes as a loss_fn_inputs value (converted to TensorData): TensorData, a numpy
# array or torch tensor, a (nested) list of numbers, or the JSON dict form.
LossFnInputValue = Union[TensorData, Sequence[Any], Mapping[str, Any], Any]
ProvenanceSpan = Union[PromptProvenanceSpan, SampledProvenanceSpan]
LossFnOutput = dict[str, TensorData]
# Inputs a 2-D torch tensor of is sent as sparse CSR (when smaller), as the official SDK does.
SPARSE_INPUT_KEYS = frozenset({"target_tokens", "weights"})


def _to_tensor(key: str, value: Any) -> TensorData:
    """One loss_fn_inputs value as TensorData: TensorData as is, torch tensors (2-D ones under
    target_tokens/weights as CSR when smaller), numpy arrays, (nested) lists in the key's dtype,
    or the JSON dict form."""
    if isinstance(value, TensorData):
        return value
    if is_torch_tensor(value):
        if key in SPARSE_INPUT_KEYS and value.dim() == 2:
            return TensorData.from_torch_sparse(value)
        return TensorData.from_torch(value)
    if is_numpy_array(value):
        return TensorData.from_numpy(value)
    if isinstance(value, (list, tuple)):
        dtype = INPUT_KEY_DTYPES.get(key)
        if dtype is None:
            known = ", ".join(repr(k) for k in INPUT_KEY_DTYPES)
            raise KeyError(
                f"Datum.loss_fn_inputs[{key!r}]: cannot infer the dtype of a plain list under this "
                f"key (known keys: {known}); pass TensorData or a numpy array instead"
            )
        nested = bool(value) and isinstance(value[0], (list, tuple))
        return TensorData(data=value, dtype=dtype, shape=None if nested else [len(value)])
    if isinstance(value, Mapping):
        return TensorData.model_validate(value)
    raise TypeError(
        f"Datum.loss_fn_inputs[{key!r}]: expected TensorData, a numpy array, a torch tensor or a "
        f"list, got {type(value).__name__}"
    )


def _spans(name: str, spans: Any) -> list[PromptProvenanceSpan | SampledProvenanceSpan] | None:
    if spans is None:
        return None
    if isinstance(spans, (str, bytes, Mapping)) or not hasattr(spans, "__iter__"):
        raise TypeError(f"Datum.{name}: expected a list of provenance spans, got {spans!r}")
    out = []
    for index, span in enumerate(spans):
        if isinstance(span, Mapping):
            span = span_from_json(span)
        if not isinstance(span, (PromptProvenanceSpan, SampledProvenanceSpan)):
            raise TypeError(
                f"Datum.{name}[{index}]: expected a PromptProvenanceSpan or "
                f"SampledProvenanceSpan, got {type(span).__name__}"
            )
        out.append(span)
    return out


def span_from_json(value: Mapping[str, Any]) -> PromptProvenanceSpan | SampledProvenanceSpan:
    """A span from its JSON form `{"prompt_tokens": {...}}` or `{"sampled_tokens": {...}}`."""
    for key, cls in SPAN_JSON_KEYS.items():
        if key in value:
            fields = value[key]
            if len(value) != 1 or not isinstance(fields, Mapping):
                break
            return cls(**fields)
    raise ValueError(
        f"a provenance span must be {{'prompt_tokens': {{...}}}} or "
        f"{{'sampled_tokens': {{...}}}}, got {dict(value)!r}"
    )


SPAN_JSON_KEYS: Mapping[str, type[PromptProvenanceSpan | SampledProvenanceSpan]] = {
    "prompt_tokens": PromptProvenanceSpan,
    "sampled_tokens": SampledProvenanceSpan,
}


def _check_tiling(name: str, spans: ProvenanceSpans, length: int, what: str) -> None:
    total = sum(span.length for span in spans)
    if total != length:
        raise ValueError(
            f"Datum.{name}: span lengths sum to {total}, but {what} has {length} positions"
        )


@data_model
@dataclasses.dataclass(frozen=True, init=False)
class Datum(DataModel):
    """One example: the model input, the per-position tensors its loss needs, and optional
    provenance spans (which sampled sequence each run of tokens came from).

    `loss_fn_inputs` values may be TensorData, numpy arrays, torch tensors, or plain (nested)
    lists (dtype from the key: target_tokens int64, the others float32).
    """

    _json_keys = ("loss_fn_inputs", "model_input", "model_input_spans", "loss_fn_input_spans")
    _json_optional = {"model_input_spans": None, "loss_fn_input_spans": None}

    model_input: ModelInput
    loss_fn_inputs: LossFnInputs = dataclasses.field(default_factory=dict)
    model_input_spans: ProvenanceSpans | None = None
    loss_fn_input_spans: ProvenanceSpans | None = None

    def __init__(
        self,
        model_input: ModelInput | Mapping[str, Any],
        loss_fn_inputs: Mapping[str, LossFnInputValue] | None = None,
        model_input_spans: Sequence[ProvenanceSpan | Mapping[str, Any]] | None = None,
        loss_fn_input_spans: Sequence[ProvenanceSpan | Mapping[str, Any]] | None = None,
    ) -> None:
        set_ = functools.partial(object.__setattr__, self)
        set_("model_input", model_input)
        set_("loss_fn_inputs", {} if loss_fn_inputs is None else loss_fn_inputs)
        set_("model_input_spans", model_input_spans)
        set_("loss_fn_input_spans", loss_fn_input_spans)
        self._check_and_convert()

    def _check_and_convert(self) -> None:
        model_input = self.model_input
        if isinstance(model_input, Mapping):
            object.__setattr__(self, "model_input", ModelInput.model_validate(model_input))
        elif not isinstance(model_input, ModelInput):
            raise TypeError(f"Datum.model_input: expected a ModelInput, got {model_input!r}")
        inputs = self.loss_fn_inputs
        if not isinstance(inputs, Mapping):
            raise TypeError(f"Datum.loss_fn_inputs: expected a dict, got {inputs!r}")
        object.__setattr__(
            self, "loss_fn_inputs", {key: _to_tensor(key, item) for key, item in inputs.items()}
        )
        prompt = _spans("model_input_spans", self.model_input_spans)
        targets = _spans("loss_fn_input_spans", self.loss_fn_input_spans)
        if (prompt is None) != (targets is None):
            raise ValueError(
                "Datum: model_input_spans and loss_fn_input_spans are set together or not at all"
            )
        object.__setattr__(self, "model_input_spans", prompt)
        object.__setattr__(self, "loss_fn_input_spans", targets)
        if prompt is not None and targets is not None:
            self._check_spans(prompt, targets)

    def _check_spans(self, prompt: ProvenanceSpans, targets: ProvenanceSpans) -> None:
        _check_tiling("model_input_spans", prompt, self.model_input.length, "model_input")
        target_tokens = self.loss_fn_inputs.get("target_tokens")
        if target_tokens is not None and not target_tokens.is_sparse:
            shape = target_tokens.to_numpy().shape
            if len(shape) == 1:
                _check_tiling("loss_fn_input_spans", targets, shape[0], "target_tokens")

    def with_provenance(
        self, model_input: ProvenanceSpans, loss_fn_inputs: ProvenanceSpans
    ) -> Datum:
        """A copy carrying these spans: `model_input` spans must tile the input (lengths sum
        to model_input.length), `loss_fn_inputs` spans a 1-D target_tokens."""
        return dataclasses.replace(
            self, model_input_spans=list(model_input), loss_fn_input_spans=list(loss_fn_inputs)
        )
