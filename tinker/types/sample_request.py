"""Official module path: re-exports SampleRequest."""

from tinker.types.sampling import SampleRequest

__all__ = ["SampleRequest"]
