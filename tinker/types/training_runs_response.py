"""Official import path `tinker.types.training_runs_response`, no code of its own.

Aliases `TrainingRunsResponse`.
"""

from tinker.types._rest import TrainingRunsResponse

__all__ = ["TrainingRunsResponse"]
