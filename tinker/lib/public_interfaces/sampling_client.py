"""`SamplingClient` under its official module path:
`tinker.lib.public_interfaces.sampling_client`."""

from tinker.sampling_client import BackcompatSamplingClientFuture, SamplingClient

__all__ = ["BackcompatSamplingClientFuture", "SamplingClient"]
