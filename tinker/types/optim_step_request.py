"""Official import path `tinker.types.optim_step_request`, no code of its own.

Aliases `AdamParams`, `ModelID`, `OptimParams`, `OptimStepRequest`.
"""

from tinker.types._optimizers import AdamParams, OptimParams
from tinker.types._retrieval import ModelID
from tinker.types._training import OptimStepRequest

__all__ = ["AdamParams", "ModelID", "OptimParams", "OptimStepRequest"]
