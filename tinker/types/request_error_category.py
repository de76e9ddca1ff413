"""Official import path `tinker.types.request_error_category`, no code of its own.

Aliases `RequestErrorCategory`.
"""

from tinker.errors import RequestErrorCategory

__all__ = ["RequestErrorCategory"]
