"""Official import path `tinker.types.create_session_request`, no code of its own.

Aliases `CreateSessionRequest`.
"""

from tinker.types._service import CreateSessionRequest

__all__ = ["CreateSessionRequest"]
