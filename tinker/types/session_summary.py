"""Official import path `tinker.types.session_summary`, no code of its own.

Aliases `SessionStatus`, `SessionSummary`.
"""

from tinker.types._sessions import SessionStatus, SessionSummary

__all__ = ["SessionStatus", "SessionSummary"]
