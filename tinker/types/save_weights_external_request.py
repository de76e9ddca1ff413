"""Official import path `tinker.types.save_weights_external_request`, no code of its own.

Aliases `ModelID`, `SaveWeightsExternalRequest`.
"""

from tinker.types._retrieval import ModelID
from tinker.types._training import SaveWeightsExternalRequest

__all__ = ["ModelID", "SaveWeightsExternalRequest"]
