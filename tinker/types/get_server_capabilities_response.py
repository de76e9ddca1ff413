"""Official import path `tinker.types.get_server_capabilities_response`, no code of its own.

Aliases `GetServerCapabilitiesResponse`, `SupportedModel`.
"""

from tinker.types._service import GetServerCapabilitiesResponse, SupportedModel

__all__ = ["GetServerCapabilitiesResponse", "SupportedModel"]
