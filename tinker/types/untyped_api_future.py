"""Official module path: re-exports UntypedAPIFuture."""

from tinker.types.futures import UntypedAPIFuture

__all__ = ["UntypedAPIFuture"]
