"""Official import path `tinker.types.current_checkpoint_storage_usage_response`, no code of its
own.

Aliases `CurrentCheckpointStorageUsageItem`, `CurrentCheckpointStorageUsageResponse`.
"""

from tinker.types._billing import (
    CurrentCheckpointStorageUsageItem,
    CurrentCheckpointStorageUsageResponse,
)

__all__ = ["CurrentCheckpointStorageUsageItem", "CurrentCheckpointStorageUsageResponse"]
