"""Official import path `tinker.types.get_session_response`, no code of its own.

Aliases `GetSessionResponse`, `ModelID`.
"""

from tinker.types._rest import GetSessionResponse
from tinker.types._retrieval import ModelID

__all__ = ["GetSessionResponse", "ModelID"]
