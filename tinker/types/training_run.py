"""Official import path `tinker.types.training_run`: aliases `TrainingRun`, no code of its own."""

from tinker.types._rest import TrainingRun

__all__ = ["TrainingRun"]
