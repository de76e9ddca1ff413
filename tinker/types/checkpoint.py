"""Official module path: re-exports Checkpoint, CheckpointType, ParsedCheckpointTinkerPath."""

from tinker.types.paths import CheckpointType, ParsedCheckpointTinkerPath
from tinker.types.rest import Checkpoint

__all__ = ["Checkpoint", "CheckpointType", "ParsedCheckpointTinkerPath"]
