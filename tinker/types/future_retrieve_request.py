"""Official module path: re-exports FutureRetrieveRequest."""

from tinker.types.futures import FutureRetrieveRequest

__all__ = ["FutureRetrieveRequest"]
