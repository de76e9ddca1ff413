"""Official module path: re-exports OptimStepResponse."""

from tinker.types.training import OptimStepResponse

__all__ = ["OptimStepResponse"]
