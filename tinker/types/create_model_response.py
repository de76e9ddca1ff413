"""Official module path: re-exports CreateModelResponse."""

from tinker.types.training import CreateModelResponse

__all__ = ["CreateModelResponse"]
