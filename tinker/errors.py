"""Exception hierarchy of the SDK, with the official names and bases.

Every exception pickles: type, message and fields survive a round trip (for multiprocessing
pools and ProcessPoolExecutor); live HTTP objects (`request`, `response`) do not travel and come
back as None.
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BillingError",
    "ConflictError",
    "ExperimentalWarning",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestErrorCategory",
    "RequestFailedError",
    "TinkerError",
    "UnprocessableEntityError",
    "status_error",
]

# Attributes holding live transport objects: dropped when pickling.
_TRANSIENT_ATTRIBUTES = frozenset({"request", "response"})


def _restore(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    """Rebuild a pickled exception without calling its (keyword-only) constructor."""
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


class ExperimentalWarning(FutureWarning):
    """Emitted by experimental APIs, whose shape may still change."""


class TinkerError(Exception):
    """Root of every error raised by the SDK; raised directly when no API key is available."""

    def __reduce__(self) -> tuple[Any, ...]:
        state = {
            key: None if key in _TRANSIENT_ATTRIBUTES else value
            for key, value in self.__dict__.items()
        }
        return (_restore, (type(self), self.args, state))


class APIError(TinkerError):
    """Base of the errors that come from talking to the service."""

    def __init__(self, message: str, request: object | None = None, *, body: object = None):
        super().__init__(message)
        self.message = message
        self.request = request
        self.body = body

    def __str__(self) -> str:
        return self.message


def _message_given_first(first: object, message: str | None) -> tuple[object, str | None]:
    """(request-or-response, message) of a constructor whose first positional argument is a
    transport object (0.38) but was the message in this SDK's earlier form."""
    if isinstance(first, str) and message is None:
        return None, first
    return first, message


class APIStatusError(APIError):
    """The service answered with an error status (4xx/5xx) that has no more specific class.

    Built as `(message, response, body)` (0.38) or with keywords (0.5.1); the status comes
    from `status_code=`, else the response, else the class (e.g. 404 for NotFoundError).
    """

    status_code: int

    def __init__(
        self,
        message: str,
        response: object | None = None,
        body: object = None,
        *,
        status_code: int | None = None,
        request: object | None = None,
    ):
        super().__init__(message, request, body=body)
        if status_code is None:
            status_code = getattr(response, "status_code", None)
        if status_code is None:
            status_code = type(self).__dict__.get("status_code")
        if not isinstance(status_code, int):
            raise TypeError(f"{type(self).__name__} needs a status_code (or a response)")
        self.status_code = status_code
        self.response = response


class BadRequestError(APIStatusError):
    """HTTP 400."""

    status_code = 400


class AuthenticationError(APIStatusError):
    """HTTP 401: the API key is missing or wrong."""

    status_code = 401


class BillingError(APIStatusError):
    """HTTP 402: billing is not set up (or paused) for the account."""

    status_code = 402


class PermissionDeniedError(APIStatusError):
    """HTTP 403."""

    status_code = 403


class NotFoundError(APIStatusError):
    """HTTP 404."""

    status_code = 404


class ConflictError(APIStatusError):
    """HTTP 409."""

    status_code = 409


class UnprocessableEntityError(APIStatusError):
    """HTTP 422: the request body did not validate."""

    status_code = 422


class RateLimitError(APIStatusError):
    """HTTP 429."""

    status_code = 429


class InternalServerError(APIStatusError):
    """HTTP 5xx."""

    status_code = 500


class APIConnectionError(APIError):
    """The request did not get an answer: connection refused, reset or stuck.

    Built as `(request, message)` (0.38), with keywords (0.5.1), or from a message alone.
    """

    def __init__(self, request: object | None = None, message: str | None = None):
        request, message = _message_given_first(request, message)
        super().__init__(message or "Connection error.", request)


class APITimeoutError(APIConnectionError):
    """The request timed out after its retries."""

    def __init__(self, request: object | None = None, message: str | None = None):
        request, message = _message_given_first(request, message)
        super().__init__(request, message or "Request timed out.")


class APIResponseValidationError(APIError):
    """A response body did not match the expected model, or was not JSON.

    Built as `(response, body, message)` (0.38/0.5.1), with keywords, or from a message first.
    """

    def __init__(
        self,
        response: object | None = None,
        body: object = None,
        message: str | None = None,
        *,
        status_code: int | None = None,
        request: object | None = None,
    ):
        response, message = _message_given_first(response, message)
        super().__init__(
            message or "Data returned by API invalid for expected schema.",
            request,
            body=body,
        )
        if status_code is None:
            status_code = getattr(response, "status_code", 200)
        self.status_code = status_code
        self.response = response


class RequestErrorCategory(str, enum.Enum):
    """Who is to blame for a failed server-side request."""

    Unknown = "unknown"
    Server = "server"
    User = "user"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: object) -> RequestErrorCategory:
        """Map a wire value to a category; anything unrecognised is Unknown."""
        if isinstance(value, str):
            for member in cls:
                if member.value == value.lower():
                    return member
        return cls.Unknown


class RequestFailedError(TinkerError):
    """A server-side future finished with an error instead of a result."""

    def __init__(
        self,
        message: str,
        request_id: str,
        category: RequestErrorCategory = RequestErrorCategory.Unknown,
    ):
        super().__init__(message)
        self.message = message
        self.request_id = request_id
        self.category = category

    def __str__(self) -> str:
        return self.message


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: BillingError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error(
    status_code: int,
    body: object,
    *,
    response: object | None = None,
    request: object | None = None,
) -> APIStatusError:
    """Build the exception for an error status: the most specific class and the usual message."""
    cls = _STATUS_CLASSES.get(status_code)
    if cls is None:
        cls = InternalServerError if status_code >= 500 else APIStatusError
    if body is None or body == "":
        message = f"Error code: {status_code}"
    else:
        message = f"Error code: {status_code} - {body}"
    return cls(message, status_code=status_code, response=response, body=body, request=request)
