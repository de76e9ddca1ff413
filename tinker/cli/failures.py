"""Turn exceptions into the CLI's friendly one-line messages (never showing the API key)."""

from __future__ import annotations

from tinker import errors
from tinker.checkpoints import CheckpointDownloadError
from tinker.cli.context import CliError

__all__ = ["describe", "hint", "redact"]

# Most specific first: APITimeoutError is an APIConnectionError.
_MESSAGES: tuple[tuple[type[BaseException], str], ...] = (
    (errors.NotFoundError, "Resource not found"),
    (errors.AuthenticationError, "Authentication failed"),
    (errors.BillingError, "Billing issue"),
    (errors.PermissionDeniedError, "Permission denied"),
    (errors.BadRequestError, "Invalid request"),
    (errors.UnprocessableEntityError, "Invalid data provided"),
    (errors.RateLimitError, "Rate limit exceeded"),
    (errors.InternalServerError, "Internal server error"),
    (errors.APITimeoutError, "Request timeout"),
    (errors.APIConnectionError, "Connection failed"),
)

# Errors whose own message is already the right thing to tell the user.
_SELF_EXPLANATORY: tuple[type[BaseException], ...] = (
    CliError,
    CheckpointDownloadError,
    ValueError,
    FileExistsError,
    FileNotFoundError,
    PermissionError,
    NotADirectoryError,
    IsADirectoryError,
)


def describe(exc: BaseException) -> tuple[str, str | None]:
    """(headline, detail) for `exc`; the detail is None when it would repeat the headline."""
    detail = str(exc) or None
    for kind, message in _MESSAGES:
        if isinstance(exc, kind):
            return message, detail
    if isinstance(exc, errors.APIStatusError):
        return f"API error (status {exc.status_code})", detail
    if isinstance(exc, _SELF_EXPLANATORY):
        return str(exc) or type(exc).__name__, None
    if isinstance(exc, errors.TinkerError):
        return str(exc) or "Unexpected error occurred", None
    return "Unexpected error occurred", f"{type(exc).__name__}: {exc}"


def hint(exc: BaseException) -> str | None:
    """What the user can do about `exc`, when the CLI knows (a line after the message)."""
    if isinstance(exc, errors.BillingError):
        from tinker.types._training import CONSOLE_URL

        return (
            "Set up billing for your organization in the Tinker console "
            f"({CONSOLE_URL}), or ask one of its admins to."
        )
    return None


def redact(text: str, secrets: tuple[str | None, ...]) -> str:
    """Replace every secret in `text` by '***'."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
