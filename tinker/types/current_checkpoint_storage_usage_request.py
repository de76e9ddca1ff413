"""Official import path `tinker.types.current_checkpoint_storage_usage_request`, no code of its own.

Aliases `GetCurrentCheckpointStorageUsageRequest`.
"""

from tinker.types._billing import GetCurrentCheckpointStorageUsageRequest

__all__ = ["GetCurrentCheckpointStorageUsageRequest"]
