"""Credential checks for tools and notebooks: is there a credential, and does the service
accept it (`tinker.auth`, as in the official SDK 0.38).

`get_tinker_token` and `tinker_has_credentials` look only at this machine (no command runs, no
request); `raise_if_tinker_not_accessible` asks the service once.
"""

from __future__ import annotations

import os

from tinker._credentials import CREDENTIAL_COMMAND_ENV, static_credential

__all__ = ["get_tinker_token", "raise_if_tinker_not_accessible", "tinker_has_credentials"]


def get_tinker_token() -> str | None:
    """The static credential: TINKER_API_KEY, else the default key stored by `tinker auth
    login` in ~/.tinker/credentials.json; None when there is none (or it cannot be read). Runs
    no credential command and sends nothing."""
    try:
        return static_credential()
    except Exception:  # a broken home directory or environment: no credential
        return None


def tinker_has_credentials() -> bool:
    """Whether a credential is configured on this machine: a static one (see
    get_tinker_token) or a TINKER_CREDENTIAL_CMD (counted without running it)."""
    return bool(os.environ.get(CREDENTIAL_COMMAND_ENV)) or get_tinker_token() is not None


def raise_if_tinker_not_accessible() -> None:
    """Return if the service accepts this machine's credential, else raise: TinkerError (no
    credential), AuthenticationError (refused), BillingError (billing not set up) or
    APIConnectionError (unreachable); anything else comes wrapped in a TinkerError.

    Blocks for one `GET /api/v1/get_server_capabilities` on a client without a session, sent
    once: no retries, no pause on billing answers.
    """
    from tinker._access import check_access
    from tinker.config import ClientConfig

    check_access(lambda: ClientConfig.from_env(telemetry=False, require_api_key=False))
