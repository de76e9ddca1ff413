"""Model inputs: token and image chunks, ModelInput, and Datum (one training example)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union

import attrs

from tinker.types._base import WireModel, wire
from tinker.types._losses import INPUT_KEY_DTYPES
from tinker.types._tensors import TensorData, is_numpy_array, is_torch_tensor

__all__ = [
    "Datum",
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


def _check_image_sizes(chunk: ImageChunk | ImageAssetPointerChunk) -> None:
    for name in ("height", "width", "tokens"):
        value = getattr(chunk, name)
        if value < 0:
            raise ValueError(f"{type(chunk).__name__}.{name}: must be >= 0, got {value}")


@wire
@attrs.frozen(kw_only=True)
class ImageChunk(WireModel):
    """An inline image (bytes; standard base64 on the wire) taking `tokens` positions."""

    data: bytes
    format: ImageFormat
    height: int
    tokens: int
    width: int
    expected_tokens: int | None = None
    type: Literal["image"] = "image"

    def _validate(self) -> None:
        _check_image_sizes(self)

    @property
    def length(self) -> int:
        """Positions this chunk occupies: its `tokens`."""
        return self.tokens


@wire
@attrs.frozen(kw_only=True)
class ImageAssetPointerChunk(WireModel):
    """An image referenced by location (path or URL) taking `tokens` positions."""

    format: ImageFormat
    height: int
    location: str
    tokens: int
    width: int
    type: Literal["image_asset_pointer"] = "image_asset_pointer"

    def _validate(self) -> None:
        _check_image_sizes(self)

    @property
    def length(self) -> int:
        """Positions this chunk occupies: its `tokens`."""
        return self.tokens


ModelInputChunk = Union[EncodedTextChunk, ImageChunk, ImageAssetPointerChunk]


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
LossFnOutput = dict[str, TensorData]


def _to_tensor(key: str, value: Any) -> Any:
    """Turn one loss_fn_inputs value into TensorData (numpy, torch, a 1-D list, or a dict)."""
    if isinstance(value, TensorData):
        return value
    if is_torch_tensor(value):
        return TensorData.from_torch(value)
    if is_numpy_array(value):
        return TensorData.from_numpy(value)
    if isinstance(value, list):
        dtype = INPUT_KEY_DTYPES.get(key)
        if dtype is None:
            known = ", ".join(repr(k) for k in INPUT_KEY_DTYPES)
            raise KeyError(
                f"loss_fn_inputs[{key!r}]: cannot infer the dtype of a plain list under this "
                f"key (known keys: {known}); pass TensorData or a numpy array instead"
            )
        return TensorData(data=value, dtype=dtype, shape=[len(value)])
    return value  # dicts and wrong types are handled by the field check


def _convert_loss_fn_inputs(value: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        return value  # the field check reports the wrong type
    return {key: _to_tensor(key, item) for key, item in value.items()}


@wire
@attrs.frozen(kw_only=True)
class Datum(WireModel):
    """One example: the model input and the per-position tensors its loss needs.

    `loss_fn_inputs` values may be TensorData, numpy arrays, torch tensors, or plain 1-D lists
    (dtype taken from the key: target_tokens int64, weights/advantages/logprobs float32).
    """

    loss_fn_inputs: LossFnInputs = attrs.field(converter=_convert_loss_fn_inputs)
    model_input: ModelInput
