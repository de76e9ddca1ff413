"""Official import path `tinker.types.training_run`, no code of its own.

Aliases `Checkpoint`, `TrainingRun`.
"""

from tinker.types._rest import Checkpoint, TrainingRun

__all__ = ["Checkpoint", "TrainingRun"]
