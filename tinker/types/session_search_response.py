"""Official import path `tinker.types.session_search_response`, no code of its own.

Aliases `SessionSearchCursor`, `SessionSearchResponse`, `SessionSummary`.
"""

from tinker.types._sessions import SessionSearchCursor, SessionSearchResponse, SessionSummary

__all__ = ["SessionSearchCursor", "SessionSearchResponse", "SessionSummary"]
