"""Official module path: re-exports ModelInputChunk."""

from tinker.types.inputs import ModelInputChunk

__all__ = ["ModelInputChunk"]
