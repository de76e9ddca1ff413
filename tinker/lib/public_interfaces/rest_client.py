"""`RestClient` under its official module path:
`tinker.lib.public_interfaces.rest_client`."""

from tinker.rest_client import RestClient

__all__ = ["RestClient"]
