"""Official import path `tinker.types.get_info_request`, no code of its own.

Aliases `GetInfoRequest`.
"""

from tinker.types._training import GetInfoRequest

__all__ = ["GetInfoRequest"]
