"""Official module path: re-exports UnloadModelRequest."""

from tinker.types.training import UnloadModelRequest

__all__ = ["UnloadModelRequest"]
