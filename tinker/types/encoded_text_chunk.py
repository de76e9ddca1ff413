"""Official import path `tinker.types.encoded_text_chunk`, no code of its own.

Aliases `EncodedTextChunk`.
"""

from tinker.types._inputs import EncodedTextChunk

__all__ = ["EncodedTextChunk"]
