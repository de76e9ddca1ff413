"""Official module path: re-exports AdamParams."""

from tinker.types.training import AdamParams

__all__ = ["AdamParams"]
