"""Official import path `tinker.types.get_info_response`, no code of its own.

Aliases `GetInfoResponse`, `ModelData`, `ModelID`.
"""

from tinker.types._retrieval import ModelID
from tinker.types._training import GetInfoResponse, ModelData

__all__ = ["GetInfoResponse", "ModelData", "ModelID"]
