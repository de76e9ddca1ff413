"""`ServiceClient` under its official module path:
`tinker.lib.public_interfaces.service_client`."""

from tinker.service_client import ServiceClient

__all__ = ["ServiceClient"]
