"""The service's endpoint for the API key itself (`/api/v1/auth/apikey/me`), which only `tinker
auth login` and `logout` call: one plain request (no session, no retries, 30 s), the key in
X-API-Key. Failures are CliErrors that use the answer's `detail` and never show the key.
"""

from __future__ import annotations

from collections.abc import Mapping

import requests

from tinker._credential_file import MANUAL, StoredKey
from tinker.cli.context import CliError
from tinker.cli.failures import redact

__all__ = ["API_KEY_PATH", "TIMEOUT_SECONDS", "describe_key", "revoke_key"]

API_KEY_PATH = "/api/v1/auth/apikey/me"
TIMEOUT_SECONDS = 30.0


def describe_key(base_url: str, key: str, *, verify_tls: bool = True) -> StoredKey:
    """`GET /api/v1/auth/apikey/me`: the service's record of `key`, as the `manual` record that
    stores it (a CliError when the service refuses the key or answers something else than the
    record)."""
    answer = _send("GET", base_url, key, verify_tls=verify_tls)
    try:
        body = answer.json()
    except ValueError:
        body = None
    if not isinstance(body, Mapping):
        raise CliError(f"{base_url} answered {API_KEY_PATH} with something else than a key record")
    key_id = body.get("key_id")
    if isinstance(key_id, bool) or not isinstance(key_id, int | str) or key_id == "":
        raise CliError(f"{base_url} answered {API_KEY_PATH} without a key_id")
    return StoredKey.from_record(str(key_id), {**body, "type": MANUAL, "key": key})


def revoke_key(base_url: str, key: str, *, verify_tls: bool = True) -> None:
    """`DELETE /api/v1/auth/apikey/me`: ask the service to disable `key` (its answer's body is
    not used); a CliError when it does not answer 2xx."""
    _send("DELETE", base_url, key, verify_tls=verify_tls)


def _send(method: str, base_url: str, key: str, *, verify_tls: bool) -> requests.Response:
    url = f"{base_url.rstrip('/')}{API_KEY_PATH}"
    try:
        answer = requests.request(
            method, url, headers={"X-API-Key": key}, timeout=TIMEOUT_SECONDS, verify=verify_tls
        )
    except requests.RequestException as exc:
        reason = redact(str(exc), (key,)) or type(exc).__name__
        raise CliError(f"Cannot reach {base_url}: {reason}") from None
    if not 200 <= answer.status_code < 300:
        raise CliError(redact(_refusal(answer), (key,)))
    return answer


def _refusal(answer: requests.Response) -> str:
    """'HTTP 401: <detail>' from the answer's JSON `detail`, else its status reason."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, Mapping) else None
    if not isinstance(detail, str) or not detail:
        detail = answer.reason or "no detail"
    return f"The service answered HTTP {answer.status_code}: {detail}"
