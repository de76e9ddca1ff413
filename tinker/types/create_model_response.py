"""Official import path `tinker.types.create_model_response`, no code of its own.

Aliases `CreateModelResponse`, `ModelID`.
"""

from tinker.types._retrieval import ModelID
from tinker.types._training import CreateModelResponse

__all__ = ["CreateModelResponse", "ModelID"]
