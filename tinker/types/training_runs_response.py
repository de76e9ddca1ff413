"""Official module path: re-exports TrainingRunsResponse."""

from tinker.types.rest import TrainingRunsResponse

__all__ = ["TrainingRunsResponse"]
