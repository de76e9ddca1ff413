"""Official import path `tinker.types.unload_model_request`, no code of its own.

Aliases `ModelID`, `UnloadModelRequest`.
"""

from tinker.types._retrieval import ModelID
from tinker.types._training import UnloadModelRequest

__all__ = ["ModelID", "UnloadModelRequest"]
