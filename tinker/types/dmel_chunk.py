"""Official import path `tinker.types.dmel_chunk`: aliases `DmelChunk`, no code of its own."""

from tinker.types._inputs import DmelChunk

__all__ = ["DmelChunk"]
