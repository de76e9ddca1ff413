"""Official import path `tinker.types.session_search_request`, no code of its own.

Aliases `OwnSearchOwner`, `SearchOwner`, `SessionSearchCursor`, `SessionSearchRequest`,
`SessionStatusQuery`.
"""

from tinker.types._sessions import (
    OwnSearchOwner,
    SearchOwner,
    SessionSearchCursor,
    SessionSearchRequest,
    SessionStatusQuery,
)

__all__ = [
    "OwnSearchOwner",
    "SearchOwner",
    "SessionSearchCursor",
    "SessionSearchRequest",
    "SessionStatusQuery",
]
