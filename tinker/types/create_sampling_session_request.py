"""Official module path: re-exports CreateSamplingSessionRequest."""

from tinker.types.sampling import CreateSamplingSessionRequest

__all__ = ["CreateSamplingSessionRequest"]
