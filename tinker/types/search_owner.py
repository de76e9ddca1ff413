"""Official import path `tinker.types.search_owner`, no code of its own.

Aliases `AccessibleSearchOwner`, `OwnSearchOwner`, `SearchOwner`, `UserSearchOwner`.
"""

from tinker.types._sessions import (
    AccessibleSearchOwner,
    OwnSearchOwner,
    SearchOwner,
    UserSearchOwner,
)

__all__ = ["AccessibleSearchOwner", "OwnSearchOwner", "SearchOwner", "UserSearchOwner"]
