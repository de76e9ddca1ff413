"""Official module path: re-exports RequestID."""

from tinker.types.futures import RequestID

__all__ = ["RequestID"]
