"""Official import path `tinker.types.whoami_response`, no code of its own.

Aliases `WhoamiResponse`.
"""

from tinker.types._rest import WhoamiResponse

__all__ = ["WhoamiResponse"]
