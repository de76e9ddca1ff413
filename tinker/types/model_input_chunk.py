"""Official import path `tinker.types.model_input_chunk`, no code of its own.

Aliases `ModelInputChunk`.
"""

from tinker.types._inputs import ModelInputChunk

__all__ = ["ModelInputChunk"]
