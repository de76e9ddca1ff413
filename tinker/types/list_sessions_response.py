"""Official import path `tinker.types.list_sessions_response`, no code of its own.

Aliases `ListSessionsResponse`.
"""

from tinker.types._rest import ListSessionsResponse

__all__ = ["ListSessionsResponse"]
