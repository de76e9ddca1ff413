"""Official module path: re-exports OptimStepRequest."""

from tinker.types.training import OptimStepRequest

__all__ = ["OptimStepRequest"]
