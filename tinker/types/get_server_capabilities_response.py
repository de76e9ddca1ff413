"""Official module path: re-exports GetServerCapabilitiesResponse, SupportedModel."""

from tinker.types.session import GetServerCapabilitiesResponse, SupportedModel

__all__ = ["GetServerCapabilitiesResponse", "SupportedModel"]
