"""Official import path `tinker.types.checkpoint_archive_url_response`, no code of its own.

Aliases `CheckpointArchiveUrlResponse`.
"""

from tinker.types._rest import CheckpointArchiveUrlResponse

__all__ = ["CheckpointArchiveUrlResponse"]
