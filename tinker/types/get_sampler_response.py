"""Official module path: re-exports GetSamplerResponse."""

from tinker.types.rest import GetSamplerResponse

__all__ = ["GetSamplerResponse"]
