"""Official import path `tinker.types.untyped_api_future`, no code of its own.

Aliases `UntypedAPIFuture`.
"""

from tinker.types._retrieval import UntypedAPIFuture

__all__ = ["UntypedAPIFuture"]
