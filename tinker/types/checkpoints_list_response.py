"""Official import path `tinker.types.checkpoints_list_response`, no code of its own.

Aliases `Checkpoint`, `CheckpointsListResponse`, `Cursor`.
"""

from tinker.types._rest import Checkpoint, CheckpointsListResponse, Cursor

__all__ = ["Checkpoint", "CheckpointsListResponse", "Cursor"]
