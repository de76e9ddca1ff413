"""Where a credential comes from besides `api_key=` and TINKER_API_KEY: a credential command
(TINKER_CREDENTIAL_CMD, run through the shell each time a credential is needed) and the
default key stored in ~/.tinker/credentials.json (read by tinker._credential_file).

Neither the key nor the command's output ever appears in a log line or an exception.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping

from tinker._auth import looks_like_jwt, token_expiry
from tinker._credential_file import stored_default_key
from tinker.errors import TinkerError

__all__ = [
    "CREDENTIAL_COMMAND_ENV",
    "CREDENTIAL_COMMAND_TIMEOUT",
    "run_credential_command",
    "static_credential",
]

CREDENTIAL_COMMAND_ENV = "TINKER_CREDENTIAL_CMD"
CREDENTIAL_COMMAND_TIMEOUT = 60.0


def static_credential(environ: Mapping[str, str] | None = None) -> str | None:
    """A credential that needs neither a command nor the network: TINKER_API_KEY, else the
    stored default key."""
    env = os.environ if environ is None else environ
    return env.get("TINKER_API_KEY") or stored_default_key()


def run_credential_command(command: str) -> str:
    """Run the credential command through the shell; its stripped standard output. TinkerError
    when it fails, times out or prints nothing."""
    try:
        done = subprocess.run(
            command,
            shell=True,
            capture_output=True,
            text=True,
            timeout=CREDENTIAL_COMMAND_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TinkerError(
            f"the credential command ({CREDENTIAL_COMMAND_ENV}) could not run: {type(exc).__name__}"
        ) from None
    if done.returncode != 0:
        raise TinkerError(
            f"the credential command ({CREDENTIAL_COMMAND_ENV}) exited with status "
            f"{done.returncode}"
        )
    credential = done.stdout.strip()
    if not credential:
        raise TinkerError(f"the credential command ({CREDENTIAL_COMMAND_ENV}) printed nothing")
    expiry = token_expiry(credential) if looks_like_jwt(credential) else None
    if expiry is not None and expiry <= time.time():
        raise TinkerError(
            f"the credential command ({CREDENTIAL_COMMAND_ENV}) printed an expired token"
        )
    return credential
