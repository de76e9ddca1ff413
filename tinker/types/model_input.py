"""Official import path `tinker.types.model_input`, no code of its own.

Aliases `EncodedTextChunk`, `ModelInput`, `ModelInputChunk`.
"""

from tinker.types._inputs import EncodedTextChunk, ModelInput, ModelInputChunk

__all__ = ["EncodedTextChunk", "ModelInput", "ModelInputChunk"]
