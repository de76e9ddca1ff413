"""Official import path `tinker.types.session_heartbeat_response`, no code of its own.

Aliases `SessionHeartbeatResponse`.
"""

from tinker.types._service import SessionHeartbeatResponse

__all__ = ["SessionHeartbeatResponse"]
