"""Official module path: re-exports CreateSamplingSessionResponse."""

from tinker.types.sampling import CreateSamplingSessionResponse

__all__ = ["CreateSamplingSessionResponse"]
