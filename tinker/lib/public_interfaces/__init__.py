"""The public client interfaces under their official module paths (one module per client
below this package, as in the official SDK)."""

from __future__ import annotations

import concurrent.futures
from typing import TypeVar

from tinker._futures import APIFuture, settle_from
from tinker._poller import QueueState, QueueStateObserver
from tinker.rest_client import AdminClient, RestClient
from tinker.sampling_client import BackcompatSamplingClientFuture, SamplingClient
from tinker.service_client import ServiceClient
from tinker.training_client import BackcompatTrainingClientFuture, TrainingClient

__all__ = [
    "APIFuture",
    "AdminClient",
    "AwaitableConcurrentFuture",
    "BackcompatSamplingClientFuture",
    "BackcompatTrainingClientFuture",
    "QueueState",
    "QueueStateObserver",
    "RestClient",
    "SamplingClient",
    "ServiceClient",
    "TrainingClient",
]

T = TypeVar("T")


class AwaitableConcurrentFuture(APIFuture[T]):
    """An APIFuture that follows a plain `concurrent.futures.Future` (awaitable, blocking)."""

    def __init__(self, future: concurrent.futures.Future[T]) -> None:
        super().__init__()
        self._wrapped = future
        future.add_done_callback(self._follow)

    def _follow(self, source: concurrent.futures.Future[T]) -> None:
        if source.cancelled():
            super().cancel()  # this class's cancel() would cancel the source again
        else:
            settle_from(self, source)

    def cancel(self) -> bool:
        """Cancel the wrapped future (and this one with it)."""
        return self._wrapped.cancel()

    def future(self) -> concurrent.futures.Future[T]:
        """The wrapped future itself."""
        return self._wrapped
