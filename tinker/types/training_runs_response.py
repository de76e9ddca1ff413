"""Official import path `tinker.types.training_runs_response`, no code of its own.

Aliases `Cursor`, `TrainingRun`, `TrainingRunsResponse`.
"""

from tinker.types._rest import Cursor, TrainingRun, TrainingRunsResponse

__all__ = ["Cursor", "TrainingRun", "TrainingRunsResponse"]
