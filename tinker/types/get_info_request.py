"""Official import path `tinker.types.get_info_request`, no code of its own.

Aliases `GetInfoRequest`, `ModelID`.
"""

from tinker.types._retrieval import ModelID
from tinker.types._training import GetInfoRequest

__all__ = ["GetInfoRequest", "ModelID"]
