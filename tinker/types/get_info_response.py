"""Official module path: re-exports GetInfoResponse, ModelData."""

from tinker.types.training import GetInfoResponse, ModelData

__all__ = ["GetInfoResponse", "ModelData"]
