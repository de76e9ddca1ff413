"""Official module path: re-exports RequestFailedResponse."""

from tinker.types.futures import RequestFailedResponse

__all__ = ["RequestFailedResponse"]
