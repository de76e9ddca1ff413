"""Official module path: re-exports UnloadModelResponse."""

from tinker.types.training import UnloadModelResponse

__all__ = ["UnloadModelResponse"]
