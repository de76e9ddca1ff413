"""Official module path: re-exports HealthResponse."""

from tinker.types.session import HealthResponse

__all__ = ["HealthResponse"]
