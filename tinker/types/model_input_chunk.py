"""Official import path `tinker.types.model_input_chunk`, no code of its own.

Aliases `DmelChunk`, `EncodedTextChunk`, `ImageAssetPointerChunk`, `ImageChunk`, `ModelInputChunk`.
"""

from tinker.types._inputs import (
    DmelChunk,
    EncodedTextChunk,
    ImageAssetPointerChunk,
    ImageChunk,
    ModelInputChunk,
)

__all__ = [
    "DmelChunk",
    "EncodedTextChunk",
    "ImageAssetPointerChunk",
    "ImageChunk",
    "ModelInputChunk",
]
