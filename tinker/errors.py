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
    "ConflictError",
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

    def __init__(self, message: str, *, request: object | None = None, body: object = None):
        super().__init__(message)
        self.message = message
        self.request = request
        self.body = body

    def __str__(self) -> str:
        return self.message


class APIStatusError(APIError):
    """The service answered with an error status (4xx/5xx) that has no more specific class."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        response: object | None = None,
        body: object = None,
        request: object | None = None,
    ):
        super().__init__(message, request=request, body=body)
        self.status_code = status_code
        self.response = response


class BadRequestError(APIStatusError):
    """HTTP 400."""


class AuthenticationError(APIStatusError):
    """HTTP 401: the API key is missing or wrong."""


class PermissionDeniedError(APIStatusError):
    """HTTP 403."""


class NotFoundError(APIStatusError):
    """HTTP 404."""


class ConflictError(APIStatusError):
    """HTTP 409."""


class UnprocessableEntityError(APIStatusError):
    """HTTP 422: the request body did not validate."""


class RateLimitError(APIStatusError):
    """HTTP 429."""


class InternalServerError(APIStatusError):
    """HTTP 5xx."""


class APIConnectionError(APIError):
    """The request did not get an answer: connection refused, reset or stuck."""

    def __init__(self, message: str = "Connection error.", *, request: object | None = None):
        super().__init__(message, request=request)


class APITimeoutError(APIConnectionError):
    """The request timed out after its retries."""

    def __init__(self, message: str = "Request timed out.", *, request: object | None = None):
        super().__init__(message, request=request)


class APIResponseValidationError(APIError):
    """A response body did not match the expected model, or was not JSON."""

    def __init__(
        self,
        message: str | None = None,
        *,
        status_code: int = 200,
        response: object | None = None,
        body: object = None,
        request: object | None = None,
    ):
        super().__init__(
            message or "Data returned by API invalid for expected schema.",
            request=request,
            body=body,
        )
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
        *,
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
