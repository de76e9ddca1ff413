"""Official module path: re-exports EncodedTextChunk."""

from tinker.types.inputs import EncodedTextChunk

__all__ = ["EncodedTextChunk"]
