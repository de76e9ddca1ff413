"""Official import path `tinker.types.load_weights_request`, no code of its own.

Aliases `LoadWeightsRequest`, `ModelID`, `OptimizerConfig`.
"""

from tinker.types._optimizers import OptimizerConfig
from tinker.types._retrieval import ModelID
from tinker.types._training import LoadWeightsRequest

__all__ = ["LoadWeightsRequest", "ModelID", "OptimizerConfig"]
