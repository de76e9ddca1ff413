"""Official import path `tinker.types.checkpoints_list_response`, no code of its own.

Aliases `CheckpointsListResponse`.
"""

from tinker.types._rest import CheckpointsListResponse

__all__ = ["CheckpointsListResponse"]
