"""Official module path: re-exports CheckpointsListResponse."""

from tinker.types.rest import CheckpointsListResponse

__all__ = ["CheckpointsListResponse"]
