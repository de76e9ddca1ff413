"""Official import path `tinker.types.get_session_response`, no code of its own.

Aliases `GetSessionResponse`.
"""

from tinker.types._rest import GetSessionResponse

__all__ = ["GetSessionResponse"]
