"""Official import path `tinker.types.unload_model_response`, no code of its own.

Aliases `ModelID`, `UnloadModelResponse`.
"""

from tinker.types._retrieval import ModelID
from tinker.types._training import UnloadModelResponse

__all__ = ["ModelID", "UnloadModelResponse"]
