"""The error a server-side future raises when the service dropped it (HTTP 410 while polling)."""

from __future__ import annotations

__all__ = ["RetryableException"]


class RetryableException(Exception):
    """A request failed in a way that resubmitting it may fix (the promise expired or broke)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
