"""Official module path: re-exports CheckpointArchiveUrlResponse."""

from tinker.types.rest import CheckpointArchiveUrlResponse

__all__ = ["CheckpointArchiveUrlResponse"]
