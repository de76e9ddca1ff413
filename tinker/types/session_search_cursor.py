"""Official import path `tinker.types.session_search_cursor`, no code of its own.

Aliases `SessionSearchCursor`.
"""

from tinker.types._sessions import SessionSearchCursor

__all__ = ["SessionSearchCursor"]
