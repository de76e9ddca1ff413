"""`TrainingClient` under its official module path:
`tinker.lib.public_interfaces.training_client`."""

from tinker.training_client import BackcompatTrainingClientFuture, TrainingClient

__all__ = ["BackcompatTrainingClientFuture", "TrainingClient"]
