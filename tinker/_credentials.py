"""Where a credential comes from besides `api_key=` and TINKER_API_KEY: a credential command
(TINKER_CREDENTIAL_CMD, run through the shell each time a credential is needed) and the
default key stored in ~/.tinker/credentials.json.

Neither the key nor the command's output ever appears in a log line or an exception.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import subprocess
import time
from collections.abc import Mapping

from tinker._auth import looks_like_jwt, token_expiry
from tinker.errors import TinkerError

__all__ = [
    "CREDENTIAL_COMMAND_ENV",
    "CREDENTIAL_COMMAND_TIMEOUT",
    "credentials_file",
    "run_credential_command",
    "static_credential",
    "stored_default_key",
]

logger = logging.getLogger(__name__)

CREDENTIAL_COMMAND_ENV = "TINKER_CREDENTIAL_CMD"
CREDENTIAL_COMMAND_TIMEOUT = 60.0


def credentials_file() -> pathlib.Path:
    """The file `tinker auth login` keeps keys in: ~/.tinker/credentials.json."""
    return pathlib.Path.home() / ".tinker" / "credentials.json"


def stored_default_key(path: pathlib.Path | None = None) -> str | None:
    """The key of the default record of the credentials file; None when there is no file, no
    default or the file cannot be read (logged, without its contents)."""
    path = credentials_file() if path is None else path
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("ignoring the credentials file %s: %s", path, type(exc).__name__)
        return None
    if not isinstance(stored, dict):
        return None
    keys, default = stored.get("keys"), stored.get("default")
    record = keys.get(str(default)) if isinstance(keys, dict) and default is not None else None
    key = record.get("key") if isinstance(record, dict) else None
    return key if isinstance(key, str) and key else None


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
