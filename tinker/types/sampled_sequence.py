"""Official module path: re-exports SampledSequence."""

from tinker.types.sampling import SampledSequence

__all__ = ["SampledSequence"]
