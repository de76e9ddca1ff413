"""Official import path `tinker.types.save_weights_request`, no code of its own.

Aliases `ModelID`, `SaveWeightsRequest`.
"""

from tinker.types._retrieval import ModelID
from tinker.types._training import SaveWeightsRequest

__all__ = ["ModelID", "SaveWeightsRequest"]
