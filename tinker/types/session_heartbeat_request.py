"""Official import path `tinker.types.session_heartbeat_request`, no code of its own.

Aliases `SessionHeartbeatRequest`.
"""

from tinker.types._service import SessionHeartbeatRequest

__all__ = ["SessionHeartbeatRequest"]
