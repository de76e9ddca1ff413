"""HTTP status errors raised by the local server's layers and turned into `{"detail": ...}` bodies.

The engine and the store raise these for problems the caller can fix (bad names, unknown ids);
the HTTP layer maps them to a response without a traceback.
"""

from __future__ import annotations

from typing import Any


class HTTPError(Exception):
    """An error with an HTTP status code and a JSON-ready `detail` for the client."""

    status: int = 500

    def __init__(
        self,
        detail: Any,
        *,
        status: int | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(detail if isinstance(detail, str) else repr(detail))
        self.detail = detail
        self.headers = headers
        if status is not None:
            self.status = status


class BadRequest(HTTPError):
    """400: the request is malformed or names something invalid."""

    status = 400


class Unauthorized(HTTPError):
    """401: missing or wrong API key (or an invalid or expired token)."""

    status = 401


class PaymentRequired(HTTPError):
    """402: billing is not in order (0.38 clients pause and retry)."""

    status = 402


class NotFound(HTTPError):
    """404: unknown route, id or checkpoint."""

    status = 404


class MethodNotAllowed(HTTPError):
    """405: the route exists but not for this method."""

    status = 405

    def __init__(self, detail: Any, *, allowed: tuple[str, ...] = ()) -> None:
        super().__init__(detail)
        self.allowed = allowed


class Gone(HTTPError):
    """410: the result of a future has expired (sampling clients resubmit on this)."""

    status = 410


class LengthRequired(HTTPError):
    """411: a body without Content-Length (chunked uploads are not accepted)."""

    status = 411


class PayloadTooLarge(HTTPError):
    """413: the body is larger than the server accepts."""

    status = 413


class UnsupportedMediaType(HTTPError):
    """415: a body format or content encoding the endpoint (or protocol era) does not take."""

    status = 415


class Unprocessable(HTTPError):
    """422: the body is valid JSON but does not match the request model."""

    status = 422


class TooManyRequests(HTTPError):
    """429: deliberate back-pressure (sampling queue full)."""

    status = 429


class ServiceUnavailable(HTTPError):
    """503: the server is shutting down."""

    status = 503
