"""Official import path `tinker.types.model_id`: aliases `ModelID`, no code of its own."""

from tinker.types._retrieval import ModelID

__all__ = ["ModelID"]
