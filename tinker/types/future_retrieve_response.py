"""Official module path: re-exports FutureRetrieveResponse."""

from tinker.types.futures import FutureRetrieveResponse

__all__ = ["FutureRetrieveResponse"]
