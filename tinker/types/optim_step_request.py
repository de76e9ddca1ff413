"""Official import path `tinker.types.optim_step_request`, no code of its own.

Aliases `OptimStepRequest`.
"""

from tinker.types._training import OptimStepRequest

__all__ = ["OptimStepRequest"]
