"""Official import path `tinker.types.create_session_response`, no code of its own.

Aliases `CreateSessionResponse`.
"""

from tinker.types._service import CreateSessionResponse

__all__ = ["CreateSessionResponse"]
