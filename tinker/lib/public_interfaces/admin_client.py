"""`AdminClient` under its official module path:
`tinker.lib.public_interfaces.admin_client`."""

from tinker.rest_client import AdminClient

__all__ = ["AdminClient"]
