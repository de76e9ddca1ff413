"""Official module path: re-exports WeightsInfoResponse."""

from tinker.types.rest import WeightsInfoResponse

__all__ = ["WeightsInfoResponse"]
