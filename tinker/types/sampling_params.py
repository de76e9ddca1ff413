"""Official module path: re-exports SamplingParams."""

from tinker.types.sampling import SamplingParams

__all__ = ["SamplingParams"]
