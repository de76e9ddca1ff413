"""Official import path `tinker.types.checkpoint`, no code of its own.

Aliases `Checkpoint`, `CheckpointType`, `ParsedCheckpointTinkerPath`.
"""

from tinker.types._paths import CheckpointType, ParsedCheckpointTinkerPath
from tinker.types._rest import Checkpoint

__all__ = ["Checkpoint", "CheckpointType", "ParsedCheckpointTinkerPath"]
