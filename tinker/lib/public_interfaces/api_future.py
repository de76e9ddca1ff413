"""`APIFuture` and `AwaitableConcurrentFuture` under their official module path."""

from tinker.lib.public_interfaces import APIFuture, AwaitableConcurrentFuture

__all__ = ["APIFuture", "AwaitableConcurrentFuture"]
