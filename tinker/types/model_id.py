"""Official module path: re-exports ModelID."""

from tinker.types.futures import ModelID

__all__ = ["ModelID"]
