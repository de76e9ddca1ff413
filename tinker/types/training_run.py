"""Official module path: re-exports TrainingRun."""

from tinker.types.rest import TrainingRun

__all__ = ["TrainingRun"]
