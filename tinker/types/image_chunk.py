"""Official module path: re-exports ImageChunk."""

from tinker.types.inputs import ImageChunk

__all__ = ["ImageChunk"]
