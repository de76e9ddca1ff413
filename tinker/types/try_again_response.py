"""Official module path: re-exports TryAgainResponse."""

from tinker.types.futures import TryAgainResponse

__all__ = ["TryAgainResponse"]
