"""Official import path `tinker.types.image_chunk`: aliases `ImageChunk`, no code of its own."""

from tinker.types._inputs import ImageChunk

__all__ = ["ImageChunk"]
