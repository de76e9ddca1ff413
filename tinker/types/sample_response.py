"""Official module path: re-exports SampleResponse."""

from tinker.types.sampling import SampleResponse

__all__ = ["SampleResponse"]
