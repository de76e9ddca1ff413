"""Official import path `tinker.types.optim_step_response`, no code of its own.

Aliases `OptimStepResponse`.
"""

from tinker.types._training import OptimStepResponse

__all__ = ["OptimStepResponse"]
